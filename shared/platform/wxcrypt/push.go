package wxcrypt

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
)

// Window is how far a push's signed timestamp may be from our clock. Neither WeCom nor WeChat
// documents a window (unconfirmed: none found in 90968 or 消息加解密说明); ±300 s is ours, wide
// enough for their retries (three within about 15 s) and clock skew, narrow against replays.
const Window = 300 * time.Second

// CheckTimestamp rejects a timestamp that is not unix seconds (400) or lies outside Window (401),
// and returns it.
func CheckTimestamp(timestamp string, now time.Time) (time.Time, error) {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return time.Time{}, platform.Malformed("timestamp", "not unix seconds: %q", timestamp)
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > Window || d < -Window {
		return time.Time{}, fmt.Errorf("%w: timestamp %s is %s away from now, outside ±%s", platform.ErrSignature, timestamp, d.Round(time.Second), Window)
	}
	return at, nil
}

// Open is what every encrypted push goes through (WeCom 90968, WeChat 消息加解密说明): verify
// msg_signature over the Encrypt element, check the signed timestamp against Window at receivedAt,
// decrypt. q is the push's query (msg_signature, timestamp, nonce).
func (c *Crypter) Open(q url.Values, encrypt string, receivedAt time.Time) ([]byte, error) {
	ts := q.Get("timestamp")
	if err := c.Verify(q.Get("msg_signature"), ts, q.Get("nonce"), encrypt); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if _, err := CheckTimestamp(ts, receivedAt); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	plain, err := c.Decrypt(encrypt)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return plain, nil
}

// Envelope is the outer body of an encrypted push: `<xml><ToUserName/><Encrypt/><AgentID/></xml>`
// (WeCom 90930 §"接收数据格式"; WeChat safe mode), or the same names in JSON (mini-program pushes
// configured for JSON).
type Envelope struct {
	ToUserName string `xml:"ToUserName" json:"ToUserName"`
	Encrypt    string `xml:"Encrypt" json:"Encrypt"`
	AgentID    string `xml:"AgentID" json:"AgentID"`
}

// ParseEnvelope reads an encrypted push's body, XML or (first byte '{') JSON; Encrypt must be set.
func ParseEnvelope(body []byte) (Envelope, error) {
	var env Envelope
	if err := Unmarshal(body, &env); err != nil {
		return env, err
	}
	if env.Encrypt == "" {
		return env, platform.Malformed("Encrypt", "missing")
	}
	return env, nil
}

// Unmarshal decodes a WeCom / WeChat body: JSON when it starts with '{', otherwise XML with the
// root element <xml>. The error names "body".
func Unmarshal(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if err := json.Unmarshal(trimmed, v); err != nil {
			return platform.Malformed("body", "not the JSON the platform sends: %v", err)
		}
		return nil
	}
	var root struct {
		XMLName xml.Name
	}
	if err := xml.Unmarshal(trimmed, &root); err != nil {
		return platform.Malformed("body", "not XML: %v", err)
	}
	if root.XMLName.Local != "xml" {
		return platform.Malformed("body", "root element is <%s>, want <xml>", root.XMLName.Local)
	}
	if err := xml.Unmarshal(trimmed, v); err != nil {
		return platform.Malformed("body", "not XML: %v", err)
	}
	return nil
}

// Scalar is a field that WeChat's JSON pushes send as a number and its XML pushes as text
// (CreateTime, MsgId): it decodes from either into the text.
type Scalar string

// UnmarshalJSON accepts a JSON string or number.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Scalar(n)
		return nil
	}
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return fmt.Errorf("want a string or a number, got %s", b)
	}
	*s = Scalar(text)
	return nil
}
