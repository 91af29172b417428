package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Outbound calls carry secrets in their URLs on several platforms (WeCom's corpsecret and
// access_token, WeChat's and Doudian's access_token and sign, a brand's webhook URL with a token).
// Go's HTTP client quotes the whole URL in its errors, and a delivery error ends up in logs, in the
// notification's stored record and in notification.failed on the bus: these helpers keep every
// error to the method and the URL without its query.

// newRequest builds a request; an unparsable URL is refused without quoting it.
func newRequest(ctx context.Context, method, rawURL string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return nil, fmt.Errorf("%w: %s request URL: %w", ErrRejected, ue.Op, ue.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return req, nil
}

// send sends req; a transport error names the method and safeURL(req.URL) only.
func send(client *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := client.Do(req)
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return nil, fmt.Errorf("%s %s: %w", ue.Op, safeURL(req.URL), ue.Err)
	}
	return resp, err
}

// safeURL is u as errors may show it: scheme, host and path, no user info, no query.
func safeURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
