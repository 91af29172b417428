package notify

import (
	"context"
	"sync"
	"time"
)

// tokenCache keeps one provider access token until shortly before it expires. WeCom's gettoken
// and WeChat's stable_token both hand out tokens valid for expires_in seconds (7200) and answer
// a stale one with 40001/40014/42001; the caller then asks for a fresh one with refresh.
type tokenCache struct {
	mu      sync.Mutex
	token   string
	expires time.Time
	// fetch asks the provider; force says the cached token was refused (rejected is that token).
	fetch func(ctx context.Context, force bool, rejected string) (token string, ttl time.Duration, err error)
	now   func() time.Time
}

// tokenMargin is how long before its expiry a token is replaced, so a request never carries
// one that expires on the way.
const tokenMargin = time.Minute

// get returns the cached token, or a new one when there is none, it is about to expire, or
// refresh says the provider refused it.
func (c *tokenCache) get(ctx context.Context, refresh bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !refresh && c.token != "" && c.now().Before(c.expires) {
		return c.token, nil
	}
	token, ttl, err := c.fetch(ctx, refresh, c.token)
	if err != nil {
		return "", err
	}
	c.token, c.expires = token, c.now().Add(ttl-tokenMargin)
	return token, nil
}
