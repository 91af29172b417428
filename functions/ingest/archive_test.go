package ingest

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzRawRoundTrip: whatever a push holds, its archive message decodes back to the same push
// (bar the dropped cookie), and decoding arbitrary headers never panics.
func FuzzRawRoundTrip(f *testing.F) {
	f.Add("pos", "v1/x", "a=1&b=%E6%B5%8B", "X-Omnimember-Signature", "v1=ab", []byte(`{"type":"order.paid"}`), `{"A":["b"]}`)
	f.Add("app", "", "", "Event-Sign", "", []byte{0, 0xff, '\n'}, `not json`)
	f.Add("pos", "x\r\nNats-Msg-Id: forged", "", "X-A", "line\r\nbreak", []byte("{}"), `{}`)
	f.Fuzz(func(t *testing.T, name, rest, query, hkey, hval string, body []byte, rawHeaders string) {
		if name == "" || hkey == "" {
			return
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		push := platform.Push{Platform: name, Rest: rest, Method: http.MethodPost, Header: map[string][]string{hkey: {hval}},
			Query: q, Body: body, ReceivedAt: time.Unix(1795600800, 123).UTC()}
		msg, err := RawMsg(push)
		require.NoError(t, err)
		for k, vs := range msg.Header {
			for _, v := range vs {
				require.NotContains(t, v, "\n", "header %s stays one line on the wire", k)
				require.NotContains(t, v, "\r", "header %s stays one line on the wire", k)
			}
		}
		got, err := RawPush(msg.Subject, msg.Header, msg.Data)
		require.NoError(t, err)
		assert.Equal(t, push.Body, got.Body)
		assert.Equal(t, push.Rest, got.Rest)
		assert.Equal(t, push.Query.Encode(), got.Query.Encode())
		assert.True(t, push.ReceivedAt.Equal(got.ReceivedAt))
		msg.Header.Set(HeaderRawHeaders, rawHeaders)
		_, _ = RawPush(msg.Subject, msg.Header, msg.Data)
	})
}
