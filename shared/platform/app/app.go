// Package app verifies and normalises the brand's app/H5 SDK batches (Segment-like track, identify
// and page calls), relayed and signed by the brand's backend with omnimember's v1 HMAC signature.
package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/signature"
)

// Name is the platform's path segment: POST /webhooks/app.
const Name = "app"

// HeaderApp names the app (the shop key of its credentials).
const HeaderApp = "X-Omnimember-App"

// MaxBatch is the most calls one batch may carry.
const MaxBatch = 100

// Call types.
const (
	TypeIdentify = "identify"
	TypeTrack    = "track"
	TypePage     = "page"
)

// Batch is one SDK upload (functions/ingest/README.md documents it with examples).
type Batch struct {
	Batch []Call `json:"batch"`
}

// Call is one SDK call. MessageID is unique per app: a resent call is the same call.
type Call struct {
	Type        string                     `json:"type"`
	MessageID   string                     `json:"messageId"`
	AnonymousID string                     `json:"anonymousId,omitempty"`
	UserID      string                     `json:"userId,omitempty"`
	Event       string                     `json:"event,omitempty"` // track
	Name        string                     `json:"name,omitempty"`  // page
	Properties  map[string]json.RawMessage `json:"properties,omitempty"`
	Traits      Traits                     `json:"traits,omitzero"`
	Timestamp   time.Time                  `json:"timestamp"`
}

// Traits are what identify tells about the user; only the phone is an identity.
type Traits struct {
	Phone string `json:"phone,omitempty"`
}

// Adapter is the app platform.
type Adapter struct{}

// Name is "app".
func (Adapter) Name() string { return Name }

// Verify checks the sender's signature over timestamp and body.
func (Adapter) Verify(push platform.Push, creds platform.Credentials) error {
	_, err := signature.VerifyPush(push, creds, HeaderApp)
	return err
}

// Handle verifies the app's signature over timestamp and body, then normalises every call.
func (Adapter) Handle(_ context.Context, push platform.Push, creds platform.Credentials) (platform.Result, error) {
	appKey, err := signature.VerifyPush(push, creds, HeaderApp)
	if err != nil {
		return platform.Result{}, err
	}
	b, err := Parse(push.Body)
	if err != nil {
		return platform.Result{}, err
	}
	return Normalise(appKey, b)
}

// Parse decodes and checks a batch; a bad call is reported as batch.<index>.<field>.
func Parse(body []byte) (Batch, error) {
	var b Batch
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&b); err != nil {
		return b, decodeError(err)
	}
	switch {
	case len(b.Batch) == 0:
		return b, platform.Malformed("batch", "no calls")
	case len(b.Batch) > MaxBatch:
		return b, platform.Malformed("batch", "%d calls, at most %d per batch", len(b.Batch), MaxBatch)
	}
	for i, c := range b.Batch {
		if field, reason := check(c); field != "" {
			return b, platform.Malformed(fmt.Sprintf("batch.%d.%s", i, field), "%s", reason)
		}
	}
	return b, nil
}

func check(c Call) (field, reason string) {
	switch {
	case strings.TrimSpace(c.Type) == "":
		return "type", "missing"
	case strings.TrimSpace(c.MessageID) == "":
		return "messageId", "missing: every call carries its own id"
	case c.Timestamp.IsZero():
		return "timestamp", "missing (RFC 3339)"
	case c.Type == TypeTrack && strings.TrimSpace(c.Event) == "":
		return "event", "a track call names its event"
	}
	if c.Traits.Phone != "" {
		if _, err := identity.NormalizePhone(c.Traits.Phone); err != nil {
			return "traits.phone", "not a mainland mobile number" // the value is never echoed
		}
	}
	return "", ""
}

func decodeError(err error) error {
	if ute, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && ute.Field != "" {
		return platform.Malformed(ute.Field, "want a JSON %s", ute.Type)
	}
	if pe, ok := errors.AsType[*time.ParseError](err); ok {
		return platform.Malformed("batch", "a timestamp is not RFC 3339: %q", pe.Value)
	}
	return platform.Malformed("body", "not a JSON object with a batch: %v", err)
}

// Normalise turns the calls into events: identify → member.registered carrying app_user_id,
// anonymous_id and phone together (match links them: the strong ids merge, the anonymous id attaches
// through them); track and page → interaction.recorded. Calls of other types, or without any id,
// are acknowledged and reported unhandled.
func Normalise(appKey string, b Batch) (platform.Result, error) {
	res := platform.Result{Shop: appKey}
	for i, c := range b.Batch {
		ids := c.identities()
		if len(ids) == 0 || (c.Type != TypeIdentify && c.Type != TypeTrack && c.Type != TypePage) {
			res.Unhandled = append(res.Unhandled, unhandledName(c.Type, len(ids) == 0))
			continue
		}
		ev, err := event(appKey, c, ids)
		if err == nil {
			err = events.Validate(ev)
		}
		if fe, ok := errors.AsType[*events.FieldError](err); ok {
			return res, platform.Malformed(fmt.Sprintf("batch.%d.%s", i, callField(fe.Field)), "%s", fe.Reason)
		}
		if err != nil {
			return res, err
		}
		res.Events = append(res.Events, ev)
	}
	res.Reply = platform.Reply{ContentType: "application/json", Body: fmt.Appendf(nil, `{"ok":true,"events":%d}`, len(res.Events))}
	return res, nil
}

func unhandledName(t string, anonymous bool) string {
	if anonymous {
		return t + " (no id)"
	}
	return t
}

// callField maps an event field back to the call's: identities come from the ids and traits,
// attributes from the properties.
func callField(field string) string {
	switch rest, _ := strings.CutPrefix(field, "data."); {
	case strings.HasPrefix(rest, "identities"):
		return "userId"
	case strings.HasPrefix(rest, "attributes"):
		return "properties"
	default:
		return rest
	}
}

func event(appKey string, c Call, ids []events.Identity) (cloudevents.Event, error) {
	id, source := platform.EventID(Name, appKey+"/"+c.MessageID, 0), platform.Source(Name)
	if c.Type == TypeIdentify {
		return events.New(events.MemberRegistered, id, source, c.Timestamp, events.MemberRegisteredData{Channel: events.ChannelApp,
			ShopID: appKey, RegisteredAt: c.Timestamp, Identities: ids})
	}
	attrs := attributes(c.Properties)
	kind := TypePage
	if c.Type == TypeTrack {
		kind = Kind(c.Event)
		attrs["event"] = c.Event
	} else if c.Name != "" {
		attrs["page"] = c.Name
	}
	return events.New(events.InteractionRecorded, id, source, c.Timestamp, events.InteractionRecordedData{Channel: events.ChannelApp,
		Kind: kind, OccurredAt: c.Timestamp, Identities: ids, Attributes: attrs})
}

// Kind is the interaction kind of a tracked event: "track_" and the event name in the contract's
// kind alphabet (lowercase letters, digits, underscores, 40 at most): "Add To Cart" → track_add_to_cart.
// The contract's kind pattern has no room for "track:<event>", so the name itself travels in the
// "event" attribute.
func Kind(event string) string {
	var b strings.Builder
	b.WriteString("track_")
	underscore := true
	for _, r := range strings.ToLower(event) {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		switch {
		case ok:
			b.WriteRune(r)
			underscore = false
		case !underscore:
			b.WriteByte('_')
			underscore = true
		}
	}
	k := strings.TrimRight(b.String(), "_")
	if len(k) > 40 {
		k = strings.TrimRight(k[:40], "_")
	}
	if k == "track" {
		return "track"
	}
	return k
}

// phoneLike finds mainland mobile numbers in free-form properties.
var phoneLike = regexp.MustCompile(`1[3-9][0-9]{9}`)

// attributes flattens properties to strings: strings as they are, other JSON values as JSON. A phone
// number an app put in a property is masked: only identify's traits.phone is an identity (sealed by
// match); a property would carry it in plaintext through the chain.
func attributes(props map[string]json.RawMessage) map[string]string {
	out := make(map[string]string, len(props)+1)
	for k, raw := range props {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var compact bytes.Buffer
			if json.Compact(&compact, raw) != nil {
				compact.Write(raw)
			}
			s = compact.String()
		}
		out[k] = phoneLike.ReplaceAllStringFunc(s, identity.MaskPhone)
	}
	return out
}

func (c Call) identities() []events.Identity {
	var out []events.Identity
	add := func(typ, v string) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, events.Identity{Type: typ, Value: v})
		}
	}
	add(identity.AppUserID, c.UserID)
	add(identity.AnonymousID, c.AnonymousID)
	if c.Type == TypeIdentify {
		add(identity.Phone, c.Traits.Phone)
	}
	return out
}
