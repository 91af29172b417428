package outbound

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Options size a platform API client; zero values take the defaults.
type Options struct {
	HTTP      *http.Client  // nil: a client with Timeout
	Attempts  int           // calls per request before giving up (default 3)
	Backoff   time.Duration // wait before the second attempt; doubles after each failure (default 200 ms)
	CacheSize int           // entries of the client's cache (default 10 000; negative: no cache)
	CacheTTL  time.Duration // how long an entry is served (default 10 min)
	Timeout   time.Duration // of each call when HTTP is nil (default 5 s)
}

// WithDefaults fills in what o leaves zero.
func (o Options) WithDefaults() Options {
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.CacheSize == 0 {
		o.CacheSize = 10000
	}
	if o.CacheTTL <= 0 {
		// Short: caches hold plaintext phones in memory only long enough to serve a burst (a
		// refund right after its payment, a platform's redelivery).
		o.CacheTTL = 10 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: o.Timeout}
	}
	return o
}

// maxAnswer bounds what is read of an answer.
const maxAnswer = 4 << 20

// Receive sends req and reads the answer. Network errors, an unreadable body and 5xx are
// Retryable; any other status is the caller's to judge with the body. The request's URL carries
// an access token or a secret in its query on most platforms, so a transport error is returned
// without it.
func Receive(hc *http.Client, req *http.Request) (status int, body []byte, err error) {
	resp, err := hc.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = fmt.Errorf("%s %s: %w", ue.Op, req.URL.Path, ue.Err)
		}
		return 0, nil, &Retryable{Err: err}
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return resp.StatusCode, nil, &Retryable{Err: err}
	}
	if resp.StatusCode >= 500 {
		return resp.StatusCode, body, &Retryable{Err: fmt.Errorf("status %d", resp.StatusCode)}
	}
	return resp.StatusCode, body, nil
}
