package campaign

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/segment"
)

// FuzzCreateRequest feeds arbitrary bodies through the decoder and the validation: either a field
// error or a campaign that validates again, never a panic.
func FuzzCreateRequest(f *testing.F) {
	f.Add([]byte(`{"name":"x","segment":"dormant","channel":"sms","template":"winback_coupon","coupon":{"code":"A","title":"B"}}`))
	f.Add([]byte(`{"name":"x","rule":{"spendFen":{"days":30,"min":1}},"channel":"wecom","template":"vip_thanks"}`))
	f.Add([]byte(`{"name":"x","rule":{"points":{"max":-1}},"channel":"sms","template":"bonus_points","bonusPoints":5}`))
	f.Add([]byte(`{"name":"x","segment":"dormant","channel":"sms","template":"points_multiplier","multiplier":{"factor":"2","from":"2026-11-25T00:00:00Z","to":"2026-12-25T00:00:00Z"}}`))
	f.Add([]byte(`{"name":7}`))
	f.Add([]byte(`[]`))
	h := &Handler{}
	var err error
	if h.Segments, err = segment.Default(); err != nil {
		f.Fatal(err)
	}
	if h.Templates, err = DefaultTemplates(); err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req CreateRequest
		r := httptest.NewRequest("POST", "/v1/campaigns", bytes.NewReader(body))
		if err := decodeBody(httptest.NewRecorder(), r, &req); err != nil {
			var fe *fieldError
			if errors.Is(err, errTooLarge) && len(body) > MaxBodyBytes {
				return
			}
			if !errors.As(err, &fe) || fe.field == "" {
				t.Fatalf("decode error %v does not name a field", err)
			}
			return
		}
		c, err := h.validate(req, now)
		if err != nil {
			var fe *fieldError
			if !errors.As(err, &fe) || fe.field == "" {
				t.Fatalf("validation error %v does not name a field", err)
			}
			return
		}
		if _, err := h.vars(c); err != nil {
			t.Fatalf("a valid campaign cannot render its message: %v", err)
		}
	})
}
