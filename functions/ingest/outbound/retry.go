package outbound

import (
	"context"
	"errors"
	"time"
)

// Retryable marks a failure worth another attempt: the network, or a 5xx from the gateway.
type Retryable struct{ Err error }

func (r *Retryable) Error() string { return r.Err.Error() }
func (r *Retryable) Unwrap() error { return r.Err }

// Retry calls f up to attempts times while it fails with a *Retryable, waiting backoff before the
// second attempt and doubling the wait after each failure. It returns f's last error, or the
// context's when it ends during a wait.
func Retry(ctx context.Context, attempts int, backoff time.Duration, f func() error) error {
	wait := backoff
	for attempt := 1; ; attempt++ {
		err := f()
		var retry *Retryable
		if err == nil || !errors.As(err, &retry) || attempt >= attempts {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}
