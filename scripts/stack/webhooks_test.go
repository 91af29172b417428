package stack

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
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	posSecret = "pos-store-secret-1"
	appSecret = "app-backend-secret-1"
)

// nativePush is a signed request the way the brand's store system or app backend sends it; the
// signature is computed here from the documented scheme, not by the adapters' code.
type nativePush struct {
	path, keyHeader, key, secret string
	body                         []byte
	at                           time.Time
}

type pushAnswer struct {
	status int
	body   runtime.ErrorBody
	raw    string
}

func (p nativePush) send(t *testing.T, s *Stack) pushAnswer {
	t.Helper()
	stamp := strconv.FormatInt(p.at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(p.secret))
	m.Write([]byte(stamp + "\n"))
	m.Write(p.body)
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr+p.path, bytes.NewReader(p.body))
	require.NoError(t, err)
	req.Header.Set(p.keyHeader, p.key)
	req.Header.Set("X-Omnimember-Timestamp", stamp)
	req.Header.Set("X-Omnimember-Signature", "v1="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := pushAnswer{status: resp.StatusCode, raw: string(raw)}
	if resp.StatusCode >= 400 {
		require.NoError(t, json.Unmarshal(raw, &a.body), string(raw))
	}
	return a
}

func posPush(body string, at time.Time) nativePush {
	return nativePush{path: "/webhooks/pos", keyHeader: "X-Omnimember-Store", key: "store-sh-01", secret: posSecret, body: []byte(body), at: at}
}

func appPush(body string, at time.Time) nativePush {
	return nativePush{path: "/webhooks/app", keyHeader: "X-Omnimember-App", key: "brand-app", secret: appSecret, body: []byte(body), at: at}
}

// storedEvents counts everything in the events stream (every step of the chain).
func storedEvents(t *testing.T, s *Stack) uint64 {
	info, err := s.Runtime.JetStream().Stream(context.Background(), stream.Events)
	require.NoError(t, err)
	i, err := info.Info(context.Background())
	require.NoError(t, err)
	return i.State.Msgs
}

// TestNativeWebhooksReachTheProfile sends a signed POS order and an app identify+track through
// /webhooks/{platform}: both reach the member's profile; bad input reaches nothing; a replayed POS
// push is answered 200 and counted once.
func TestNativeWebhooksReachTheProfile(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.WebhookSecrets = ingest.Secrets{"pos": {"store-sh-01": {"secret": posSecret}}, "app": {"brand-app": {"secret": appSecret}}}
	s := start(t, opts)
	now := time.Now()
	order := posPush(fmt.Sprintf(`{"type":"order.paid","id":"till-7-0001","order":{"id":"SH01-20261125-0001","amountFen":36800,`+
		`"paidAt":%q,"items":[{"sku":"BEANS-1KG","quantity":1,"amountFen":36800}]},"member":{"phone":"13612345678","card":"SH-C-0001"}}`,
		now.Add(-time.Minute).Format(time.RFC3339)), now)
	require.Equal(t, http.StatusOK, order.send(t, s).status)
	batch := appPush(fmt.Sprintf(`{"batch":[{"type":"identify","messageId":"app-m-1","anonymousId":"anon-9","userId":"u-5001",`+
		`"traits":{"phone":"13612345678"},"timestamp":%q},{"type":"track","messageId":"app-m-2","anonymousId":"anon-9","userId":"u-5001",`+
		`"event":"Add To Cart","properties":{"sku":"BEANS-1KG"},"timestamp":%q}]}`, now.Format(time.RFC3339), now.Format(time.RFC3339)), now)
	require.Equal(t, http.StatusOK, batch.send(t, s).status)
	waitQuiet(t, s)

	byPhone := lookup(t, s, "phone", "13612345678")
	byUser := lookup(t, s, "app_user_id", "u-5001")
	byCard := lookup(t, s, "pos_card", "SH-C-0001")
	assert.Equal(t, byPhone.OneID, byUser.OneID, "identify linked the app user to the store buyer")
	assert.Equal(t, byPhone.OneID, byCard.OneID)
	assert.Equal(t, int64(1), byPhone.Orders.Count)
	assert.Equal(t, int64(36800), byPhone.Orders.NetAmountFen)
	assert.Equal(t, int64(368), byPhone.Points.Balance)
	assert.Equal(t, int64(1), byPhone.Interactions.ByChannel["app"].Kinds["track_add_to_cart"])
	types := map[string]bool{}
	for _, id := range byPhone.Identities {
		types[id.Type] = true
	}
	for _, typ := range []string{"app_user_id", "anonymous_id", "pos_card"} {
		assert.True(t, types[typ], "profile lists %s", typ)
	}

	before := storedEvents(t, s)
	bad := posPush(`{"type":"order.paid","id":"x"}`, now)
	wrongSecret, unknownStore, replayed := bad, bad, posPush(string(order.body), now)
	wrongSecret.secret = "guessed"
	unknownStore.key = "store-xx-99"
	tests := []struct {
		name       string
		push       nativePush
		wantStatus int
		wantField  string
	}{
		{"bad signature", wrongSecret, http.StatusUnauthorized, ""},
		{"malformed", bad, http.StatusBadRequest, "order"},
		{"unknown store", unknownStore, http.StatusNotFound, ""},
		{"oversize", posPush(`{"pad":"`+string(bytes.Repeat([]byte("x"), 1<<20))+`"}`, now), http.StatusRequestEntityTooLarge, ""},
		{"stale timestamp", posPush(string(order.body), now.Add(-10*time.Minute)), http.StatusUnauthorized, ""},
		{"replayed push", replayed, http.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.push.send(t, s)
			assert.Equal(t, tc.wantStatus, got.status, got.raw)
			assert.Equal(t, tc.wantField, got.body.Field)
		})
	}
	waitQuiet(t, s)
	assert.Equal(t, before, storedEvents(t, s), "nothing new reached the chain (the replay is deduplicated)")
	again := lookup(t, s, "phone", "13612345678")
	assert.Equal(t, int64(1), again.Orders.Count)
	assert.Equal(t, int64(368), again.Points.Balance)
}
