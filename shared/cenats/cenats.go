// Package cenats maps CloudEvents to NATS messages and back, following the CloudEvents NATS protocol
// binding (v1.0.3): binary content mode with `ce-` headers on write; both modes on read.
package cenats

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

const (
	headerPrefix = "ce-"
	// structuredType marks a structured-mode message (binding §3: matched case-insensitively).
	structuredType = "application/cloudevents"
)

// ToMsg encodes ev in binary content mode: every attribute and extension becomes a `ce-` header
// (percent-encoded per §3.1.3.2) and the data is the payload, untouched.
func ToMsg(subject string, ev event.Event) (*nats.Msg, error) {
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("encode event %s for NATS: %w", ev.ID(), err)
	}
	h := make(nats.Header, 10)
	set := func(name, value string) {
		if value != "" {
			h[headerPrefix+name] = []string{percentEncode(value)}
		}
	}
	set("specversion", ev.SpecVersion())
	set("id", ev.ID())
	set("source", ev.Source())
	set("type", ev.Type())
	set("subject", ev.Subject())
	set("dataschema", ev.DataSchema())
	set("datacontenttype", ev.DataContentType())
	if !ev.Time().IsZero() {
		set("time", types.FormatTime(ev.Time()))
	}
	for name, v := range ev.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			return nil, fmt.Errorf("encode extension %s of event %s: %w", name, ev.ID(), err)
		}
		set(name, s)
	}
	return &nats.Msg{Subject: subject, Header: h, Data: ev.Data()}, nil
}

// FromMsg decodes a NATS message in either content mode.
func FromMsg(h nats.Header, data []byte) (event.Event, error) {
	if isStructured(h) {
		ev := event.New()
		if err := ev.UnmarshalJSON(data); err != nil {
			return ev, fmt.Errorf("decode structured CloudEvent: %w", err)
		}
		return ev, ev.Validate()
	}
	return fromBinary(h, data)
}

func isStructured(h nats.Header) bool {
	for k, vs := range h {
		if strings.EqualFold(k, "content-type") && len(vs) > 0 && strings.HasPrefix(strings.ToLower(vs[0]), structuredType) {
			return true
		}
	}
	return false
}

func fromBinary(h nats.Header, data []byte) (event.Event, error) {
	attrs := make(map[string]string, len(h))
	for k, vs := range h {
		name := strings.ToLower(k)
		if !strings.HasPrefix(name, headerPrefix) || len(vs) == 0 {
			continue
		}
		v, err := percentDecode(unquote(vs[0]))
		if err != nil {
			return event.Event{}, fmt.Errorf("header %s: %w", k, err)
		}
		attrs[strings.TrimPrefix(name, headerPrefix)] = v
	}
	switch attrs["specversion"] {
	case "":
		return event.Event{}, errors.New("not a CloudEvent: no ce-specversion header and no structured content type")
	case event.CloudEventsVersionV1, event.CloudEventsVersionV03:
	default:
		return event.Event{}, fmt.Errorf("unsupported ce-specversion %q", attrs["specversion"])
	}
	ev := event.New(attrs["specversion"])
	for name, v := range attrs {
		if err := setAttribute(&ev, name, v); err != nil {
			return ev, err
		}
	}
	if len(data) > 0 {
		ev.DataEncoded = data
	}
	return ev, ev.Validate()
}

func setAttribute(ev *event.Event, name, v string) error {
	switch name {
	case "specversion":
	case "id":
		ev.SetID(v)
	case "source":
		ev.SetSource(v)
	case "type":
		ev.SetType(v)
	case "subject":
		ev.SetSubject(v)
	case "dataschema":
		ev.SetDataSchema(v)
	case "datacontenttype":
		ev.SetDataContentType(v)
	case "time":
		t, err := types.ParseTime(v)
		if err != nil {
			return fmt.Errorf("ce-time %q: %w", v, err)
		}
		ev.SetTime(t)
	default:
		ev.SetExtension(name, v)
		if _, ok := ev.Extensions()[name]; !ok {
			return fmt.Errorf("extension %q: not a valid CloudEvents attribute name", name)
		}
	}
	return nil
}

// percentEncode encodes space, double-quote, percent and everything outside printable ASCII.
func percentEncode(s string) string {
	needs := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			needs = true
			break
		}
	}
	if !needs {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// percentDecode undoes one round of percent-encoding and rejects invalid UTF-8 (overlong forms too).
func percentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("header value is not valid UTF-8: %q", s)
		}
		return s, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("bad percent-encoding in %q", s)
		}
		out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	if !utf8.Valid(out) {
		return "", fmt.Errorf("percent-encoded value is not valid UTF-8: %q", s)
	}
	return string(out), nil
}

// unquote handles values sent as RFC 7230 quoted strings by older senders.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
