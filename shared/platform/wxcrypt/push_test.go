package wxcrypt_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wxcrypt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckTimestamp(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		ts        string
		wantIs    error
		wantField string
	}{
		{"1700000000", nil, ""},
		{"1699999700", nil, ""}, // exactly 300 s old
		{"1700000300", nil, ""}, // exactly 300 s ahead
		{"1699999699", platform.ErrSignature, ""},
		{"1700000301", platform.ErrSignature, ""},
		{"", nil, "timestamp"},
		{"17e8", nil, "timestamp"},
		{"99999999999999999999", nil, "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.ts, func(t *testing.T) {
			got, err := wxcrypt.CheckTimestamp(tt.ts, now)
			switch {
			case tt.wantIs != nil:
				assert.ErrorIs(t, err, tt.wantIs)
			case tt.wantField != "":
				var fe *events.FieldError
				require.True(t, errors.As(err, &fe), "want a field error, got %v", err)
				assert.Equal(t, tt.wantField, fe.Field)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.ts, strconv.FormatInt(got.Unix(), 10))
			}
		})
	}
}

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      wxcrypt.Envelope
		wantField string
	}{
		{"xml", "<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[abc]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>", wxcrypt.Envelope{ToUserName: "ww1", Encrypt: "abc", AgentID: "218"}, ""},
		{"json", ` {"ToUserName":"gh_1","Encrypt":"abc"}`, wxcrypt.Envelope{ToUserName: "gh_1", Encrypt: "abc"}, ""},
		{"no Encrypt", "<xml><ToUserName>x</ToUserName></xml>", wxcrypt.Envelope{}, "Encrypt"},
		{"empty body", "", wxcrypt.Envelope{}, "body"},
		{"broken xml", "<xml><Encrypt>abc</xml>", wxcrypt.Envelope{}, "body"},
		{"other root", "<root><Encrypt>abc</Encrypt></root>", wxcrypt.Envelope{}, "body"},
		{"broken json", `{"Encrypt":`, wxcrypt.Envelope{}, "body"},
		{"json of the wrong type", `{"Encrypt":1}`, wxcrypt.Envelope{}, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wxcrypt.ParseEnvelope([]byte(tt.body))
			if tt.wantField != "" {
				var fe *events.FieldError
				require.True(t, errors.As(err, &fe), "want a field error, got %v", err)
				assert.Equal(t, tt.wantField, fe.Field)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestScalar(t *testing.T) {
	var v struct {
		CreateTime wxcrypt.Scalar `json:"CreateTime" xml:"CreateTime"`
	}
	tests := []struct{ body, want string }{
		{`{"CreateTime":1403610513}`, "1403610513"},
		{`{"CreateTime":"1403610513"}`, "1403610513"},
		{`<xml><CreateTime>1403610513</CreateTime></xml>`, "1403610513"},
	}
	for _, tt := range tests {
		require.NoError(t, wxcrypt.Unmarshal([]byte(tt.body), &v), tt.body)
		assert.Equal(t, tt.want, string(v.CreateTime), tt.body)
	}
	assert.Error(t, wxcrypt.Unmarshal([]byte(`{"CreateTime":[1]}`), &v))
}

// FuzzParseEnvelope: no panic on any body, and an accepted one always has its Encrypt.
func FuzzParseEnvelope(f *testing.F) {
	f.Add("<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[abc]]></Encrypt></xml>")
	f.Add(`{"ToUserName":"gh_1","Encrypt":"abc"}`)
	f.Add("<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>")
	f.Add("<!DOCTYPE xml [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><Encrypt>&e;</Encrypt></xml>")
	f.Fuzz(func(t *testing.T, body string) {
		env, err := wxcrypt.ParseEnvelope([]byte(body))
		if err != nil {
			var fe *events.FieldError
			require.True(t, errors.As(err, &fe), "errors name a field, got %v", err)
			return
		}
		assert.NotEmpty(t, env.Encrypt)
	})
}
