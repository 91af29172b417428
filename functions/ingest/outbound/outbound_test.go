package outbound_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/ingest/outbound"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	c := outbound.NewCache[int](2, time.Minute, func() time.Time { return now })
	c.Put("a", 1)
	c.Put("b", 2)
	_, _ = c.Get("a") // b is now the least recently used
	c.Put("c", 3)
	got := map[string]bool{}
	for _, k := range []string{"a", "b", "c"} {
		_, got[k] = c.Get(k)
	}
	assert.Equal(t, map[string]bool{"a": true, "b": false, "c": true}, got)

	now = now.Add(time.Minute)
	_, ok := c.Get("a")
	assert.False(t, ok, "expired at its ttl")
}

func TestRetry(t *testing.T) {
	transient := &outbound.Retryable{Err: errors.New("503")}
	final := errors.New("bad request")
	tests := []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error
	}{
		{"success first", []error{nil}, 1, nil},
		{"transient then success", []error{transient, nil}, 2, nil},
		{"transient until the end", []error{transient, transient, transient, nil}, 3, transient},
		{"permanent stops at once", []error{final, nil}, 1, final},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := outbound.Retry(context.Background(), 3, time.Microsecond, func() error {
				calls++
				return tt.errs[calls-1]
			})
			assert.Equal(t, tt.wantCalls, calls)
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

func TestRetryStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := outbound.Retry(ctx, 5, time.Hour, func() error {
		calls++
		cancel()
		return &outbound.Retryable{Err: errors.New("503")}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, calls)
}

// TestReceiveKeepsTheURLOutOfErrors: platform URLs carry access tokens and secrets in their query;
// a transport failure is retryable and names the path, never the query.
func TestReceiveKeepsTheURLOutOfErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens any more: the call fails in transport
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/trade.get?access_token=s3cret-token", nil)
	require.NoError(t, err)
	_, _, err = outbound.Receive(srv.Client(), req)
	var retry *outbound.Retryable
	require.ErrorAs(t, err, &retry)
	assert.Contains(t, err.Error(), "/api/trade.get")
	assert.NotContains(t, err.Error(), "s3cret-token")
}
