package notify

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSignMatchesAnIndependentVector checks Sign against a value computed outside Go:
// printf '%s' '1764072000.{"id":"n1","text":"积分到账"}' | openssl dgst -sha256 -hmac 'whsec_0123456789abcdef'
func TestSignMatchesAnIndependentVector(t *testing.T) {
	got := Sign([]byte("whsec_0123456789abcdef"), "1764072000", []byte(`{"id":"n1","text":"积分到账"}`))
	assert.Equal(t, "v1=9fa25d4ace0848ee3cd12906dd41527d54233cde954b385e3d320dcfed659f75", got)
}

// receiver is a member-facing webhook endpoint as the README tells receivers to write it:
// VerifyWebhook, then dedupe on the Idempotency-Key.
type receiver struct {
	secret []byte
	now    time.Time
	mu     sync.Mutex
	seen   map[string]int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := VerifyWebhook(rc.secret, r.Header, body, rc.now, DefaultReplayWindow); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen[r.Header.Get(HeaderID)]++
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhookReceiverVerification(t *testing.T) {
	secret := []byte("whsec_0123456789abcdef")
	body := []byte(`{"id":"n1","text":"积分到账"}`)
	signed := func(ts time.Time, b []byte) http.Header {
		s := strconv.FormatInt(ts.Unix(), 10)
		return http.Header{HeaderTimestamp: {s}, HeaderSignature: {Sign(secret, s, b)}, HeaderID: {"n1"}}
	}
	tests := []struct {
		name     string
		header   http.Header
		body     []byte
		want     int
		wantSeen int
	}{
		{"fresh and signed", signed(now, body), body, http.StatusNoContent, 1},
		{"clock skew within the window", signed(now.Add(-4*time.Minute), body), body, http.StatusNoContent, 1},
		{"tampered body", signed(now, body), []byte(`{"id":"n1","text":"积分清零"}`), http.StatusUnauthorized, 0},
		{"replayed after the window", signed(now.Add(-6*time.Minute), body), body, http.StatusUnauthorized, 0},
		{"timestamp from the future", signed(now.Add(6*time.Minute), body), body, http.StatusUnauthorized, 0},
		{"timestamp changed, signature kept", http.Header{HeaderTimestamp: {strconv.FormatInt(now.Unix(), 10)},
			HeaderSignature: signed(now.Add(-time.Hour), body)[HeaderSignature], HeaderID: {"n1"}}, body, http.StatusUnauthorized, 0},
		{"unsigned", http.Header{HeaderID: {"n1"}}, body, http.StatusUnauthorized, 0},
		{"too large", signed(now, body), bytes.Repeat([]byte("x"), 2<<20), http.StatusRequestEntityTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{secret: secret, now: now, seen: map[string]int{}}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, bytes.NewReader(tt.body))
			require.NoError(t, err)
			req.Header = tt.header
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode)
			assert.Equal(t, tt.wantSeen, rc.seen["n1"])
		})
	}
}

// TestWebhookSinkToAVerifyingReceiver sends through the Webhook sink to a receiver that verifies
// with VerifyWebhook, twice (a retry), and the receiver sees one key twice: the dedupe handle.
func TestWebhookSinkToAVerifyingReceiver(t *testing.T) {
	rc := &receiver{secret: []byte("whsec_0123456789abcdef"), now: now, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	sink := Webhook{URL: srv.URL, Secret: rc.secret, Client: srv.Client(), Now: func() time.Time { return now }}
	n := Notification{ID: "n1", OneID: alice, Channel: "webhook", Text: "积分到账"}
	require.NoError(t, sink.Deliver(context.Background(), n))
	require.NoError(t, sink.Deliver(context.Background(), n))
	assert.Equal(t, map[string]int{"n1": 2}, rc.seen)
	sink.Now = func() time.Time { return now.Add(-10 * time.Minute) }
	err := sink.Deliver(context.Background(), n)
	require.ErrorIs(t, err, ErrRejected, "a receiver refuses a stale request with 401")
}
