package notify

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Errors a webhook receiver answers 401 to.
var (
	ErrWebhookSignature = errors.New("webhook signature does not match")
	ErrWebhookStale     = errors.New("webhook timestamp outside the replay window")
)

// DefaultReplayWindow is how far a webhook's timestamp may be from the receiver's clock.
const DefaultReplayWindow = 5 * time.Minute

// VerifyWebhook checks a received notification webhook as its receiver should: the signature
// over timestamp + "." + the raw body, compared in constant time, and a timestamp within window of
// now, so a captured request cannot be replayed later. Within the window the receiver dedupes on
// the Idempotency-Key header (the notification id), which also absorbs notify's own retries.
func VerifyWebhook(secret []byte, header http.Header, body []byte, now time.Time, window time.Duration) error {
	ts := header.Get(HeaderTimestamp)
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(header.Get(HeaderSignature)), []byte(want)) {
		return ErrWebhookSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrWebhookStale, HeaderTimestamp, ts)
	}
	if skew := now.Sub(time.Unix(sec, 0)).Abs(); skew > window {
		return fmt.Errorf("%w: %s is %v away", ErrWebhookStale, HeaderTimestamp, skew)
	}
	return nil
}
