package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/stream"
)

// Headers of a raw archive message; its data is the push's body byte for byte.
const (
	HeaderRawMethod   = "Omnimember-Raw-Method"
	HeaderRawRest     = "Omnimember-Raw-Rest"
	HeaderRawQuery    = "Omnimember-Raw-Query"
	HeaderRawReceived = "Omnimember-Raw-Received"
	// HeaderRawHeaders holds the request's headers as JSON (one NATS header keeps their case and order).
	HeaderRawHeaders = "Omnimember-Raw-Headers"
)

// droppedHeaders are request headers no adapter reads and the archive must not keep: a browser's
// session cookie is a credential of the sender, not part of the push.
var droppedHeaders = []string{"Cookie"}

// Archive keeps every verified push in the raw stream, before it is parsed.
type Archive struct {
	JS jetstream.JetStream
}

// Store archives push and waits for JetStream's ack. A platform's retry of the same push (same
// body, query and signature headers) has the same message id and is stored once within the
// stream's duplicate window.
func (a Archive) Store(ctx context.Context, push platform.Push) error {
	msg, err := RawMsg(push)
	if err != nil {
		return err
	}
	if _, err := a.JS.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("archive raw %s push: %w", push.Platform, err)
	}
	return nil
}

// RawMsg is the archive message of push.
func RawMsg(push platform.Push) (*nats.Msg, error) {
	hdr := textproto.MIMEHeader{}
	for k, v := range push.Header {
		if !slices.Contains(droppedHeaders, textproto.CanonicalMIMEHeaderKey(k)) {
			hdr[k] = v
		}
	}
	headers, err := json.Marshal(hdr)
	if err != nil {
		return nil, fmt.Errorf("encode %s push headers: %w", push.Platform, err)
	}
	msg := nats.NewMsg(stream.RawSubject(push.Platform))
	msg.Data = push.Body
	msg.Header.Set(HeaderRawMethod, push.Method)
	msg.Header.Set(HeaderRawRest, url.PathEscape(push.Rest)) // a decoded path may hold CR/LF: never raw in a header
	msg.Header.Set(HeaderRawQuery, push.Query.Encode())
	msg.Header.Set(HeaderRawReceived, push.ReceivedAt.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(HeaderRawHeaders, string(headers))
	msg.Header.Set(jetstream.MsgIDHeader, RawID(push))
	return msg, nil
}

// RawID identifies a push by what its platform sends again on a retry: platform, method, path,
// query (WeCom signs there), the headers whose names mention a signature (Douyin's event-sign,
// the POS signature and timestamp) and the body. Headers such as a trace id may differ per retry.
func RawID(push platform.Push) string {
	h := sha256.New()
	field := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	field(push.Platform)
	field(push.Method)
	field(push.Rest)
	field(push.Query.Encode())
	names := make([]string, 0, len(push.Header))
	for k := range push.Header {
		if isSignatureHeader(k) {
			names = append(names, textproto.CanonicalMIMEHeaderKey(k))
		}
	}
	slices.Sort(names)
	for _, k := range names {
		field(k + ":" + strings.Join(push.Header.Values(k), ","))
	}
	h.Write(push.Body)
	return hex.EncodeToString(h.Sum(nil)[:20])
}

func isSignatureHeader(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "sign") || strings.Contains(n, "timestamp")
}

// RawPush decodes an archived message back into the push ingest received.
func RawPush(subject string, hdr nats.Header, body []byte) (platform.Push, error) {
	name, ok := strings.CutPrefix(subject, stream.RawPrefix)
	if !ok || name == "" {
		return platform.Push{}, fmt.Errorf("raw subject %q: want %s<platform>", subject, stream.RawPrefix)
	}
	push := platform.Push{Platform: name, Method: hdr.Get(HeaderRawMethod), Body: body}
	var err error
	if push.Rest, err = url.PathUnescape(hdr.Get(HeaderRawRest)); err != nil {
		return push, fmt.Errorf("raw %s push path: %w", name, err)
	}
	if push.Query, err = url.ParseQuery(hdr.Get(HeaderRawQuery)); err != nil {
		return push, fmt.Errorf("raw %s push query: %w", name, err)
	}
	if push.ReceivedAt, err = time.Parse(time.RFC3339Nano, hdr.Get(HeaderRawReceived)); err != nil {
		return push, fmt.Errorf("raw %s push received time: %w", name, err)
	}
	if err := json.Unmarshal([]byte(hdr.Get(HeaderRawHeaders)), &push.Header); err != nil {
		return push, fmt.Errorf("raw %s push headers: %w", name, err)
	}
	return push, nil
}
