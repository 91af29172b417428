// Package platform declares what every platform adapter provides: verify a native push (or a
// polled message) exactly as its platform documents, and normalise it into contract events.
package platform

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
)

// Push is one native request as ingest received it: the raw body byte for byte (signatures cover
// the exact bytes), the headers and the query. Rest is the path after /webhooks/{platform}/.
// ReceivedAt is when ingest read it: adapters check timestamp windows against ReceivedAt, not the
// wall clock, so that re-normalising an archived push days later verifies as it did on arrival.
type Push struct {
	Platform   string
	Rest       string
	Method     string
	Header     textproto.MIMEHeader
	Query      url.Values
	Body       []byte
	ReceivedAt time.Time
}

// Reply is what the platform must get back on success, or it retries.
type Reply struct {
	Status      int // 0 means 200
	ContentType string
	Body        []byte
}

// Result is what one push yields. Events are contract events with deterministic ids (derived from
// the platform's message id), so a redelivered push publishes the same ids and is stored once.
// Unhandled names the message types acknowledged and archived but not turned into events.
type Result struct {
	Events    []cloudevents.Event
	Unhandled []string
	Reply     Reply
	// Shop is the shop/app key the push named (optional), for ingest's outcome log line.
	Shop string
}

// Adapter verifies and normalises one platform's pushes. Verify checks only that the push comes
// from the platform (its signature, its timestamp window), with no outgoing call and no parsing
// beyond what the signature needs: ingest archives a push only after Verify accepted it, so a
// stranger's pushes never fill the raw archive. Handle verifies again (re-normalising an archived
// push goes through Handle alone) and must not have side effects beyond outgoing reads (an
// order-detail call, a decrypt call): ingest publishes the events and answers only after
// JetStream stored them.
type Adapter interface {
	Name() string
	Verify(push Push, creds Credentials) error
	Handle(ctx context.Context, push Push, creds Credentials) (Result, error)
}

// Credentials are one platform's secrets per shop (app key, secret, token, AES key...), from the
// environment or a mounted secrets file. The shop key is whatever the platform names the
// receiver by: Douyin's app key, Youzan's client id, WeCom's corp id, a POS store id.
type Credentials map[string]Shop

// Shop is one shop's (or app's) secrets and settings by name: "appKey", "secret", "token",
// "aesKey", "shopId", ...
type Shop map[string]string

// Lookup returns a shop's secrets, or ErrUnknownShop.
func (c Credentials) Lookup(key string) (Shop, error) {
	s, ok := c[key]
	if !ok || key == "" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownShop, key)
	}
	return s, nil
}

// Errors ingest maps to HTTP statuses; none of these pushes reaches the chain.
var (
	// ErrSignature: the signature does not verify, or the timestamp is outside the window → 401.
	ErrSignature = errors.New("signature does not verify")
	// ErrUnknownShop: no credentials for the shop/app the push names → 404.
	ErrUnknownShop = errors.New("unknown shop")
	// ErrUpstream: an outgoing call the adapter needs (order detail, decrypt) failed for now → 503,
	// and the platform retries.
	ErrUpstream = errors.New("platform API unavailable")
)

// ErrRefused: a platform API refused a lookup for a reason retrying will not change (a secret
// without the rights, a server IP not on the allow-list, a wrong secret). An adapter goes on
// without what it would have read and says so in the event; the push is archived, so it can be
// re-normalised once the shop's settings are fixed.
var ErrRefused = errors.New("refused by the platform API")

// Malformed reports a body that cannot be parsed or misses a field → 400 with the field named.
func Malformed(field, format string, args ...any) error {
	return &events.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// EventID is the deterministic id of the index-th event normalised from a platform message.
func EventID(platform, messageID string, index int) string {
	return events.DerivedID("webhooks/"+platform, messageID, index)
}

// Source is the CloudEvents source of events normalised from a platform's pushes:
// `omnimember/webhooks/<platform>`, the adapter's, for every shop. It does not follow the source
// convention of senders at /v1/events (`<channel>/<shopId>`, shared/admit), and the edge does not
// apply that rule to these events (admit.Policy.PlatformSource): the shop an event names is the
// one the platform signed the push for (the shop key its secret belongs to) or its API answered
// for, so the signature, not a source scope, vouches for it.
func Source(platform string) string { return events.Source("webhooks/" + platform) }
