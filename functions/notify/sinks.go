package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// Outbox is the embedded sink: messages land in the outbox collection, in the same transaction
// that marks them sent, for the demo (or a relay) to read.
type Outbox struct{}

// DeliverTx implements TxSink.
func (Outbox) DeliverTx(tx store.Tx, n Notification) error {
	return tx.Set(member.Outbox, n.ID, n)
}

// Webhook signing headers. The signature is `v1=` + hex HMAC-SHA256 over `timestamp + "." + body`,
// so a receiver can check both the body and its freshness.
const (
	HeaderSignature = "X-Omnimember-Signature"
	HeaderTimestamp = "X-Omnimember-Timestamp"
	HeaderID        = "Idempotency-Key"
)

// Webhook posts each notification as JSON to URL, signed with Secret.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client
	Now    func() time.Time
}

// Sign computes the signature header value for a body sent at timestamp (unix seconds).
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Deliver implements Sink: 2xx is delivered; 4xx other than 408 and 429 is a rejection; anything
// else is retried by the runtime.
func (w Webhook) Deliver(ctx context.Context, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(w.Now().Unix(), 10)
	req, err := newRequest(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.Secret, ts, body))
	req.Header.Set(HeaderID, n.ID)
	resp, err := send(w.Client, req)
	if err != nil {
		return fmt.Errorf("post notification to webhook: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("%w: webhook answered %d: %s", ErrRejected, resp.StatusCode, snippet)
	}
	return fmt.Errorf("webhook answered %d: %s", resp.StatusCode, snippet)
}
