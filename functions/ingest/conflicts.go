package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/shared/runtime"
)

// ConflictBucket is the JetStream key-value bucket of the same-id check: one key per event source
// and id that /v1/events accepted, holding a fingerprint of the event, kept for the conflict
// window (entries expire with the bucket's max age).
const ConflictBucket = "omnimember_ingested"

// conflicts refuses an event whose source and id ingest accepted before with other data: JetStream's
// duplicate window and match's receipt would drop the second one silently. The first claim of a key
// is atomic (a key-value create), so of two racing senders exactly one wins; the same event again
// (a sender's retry) matches its fingerprint and is accepted, and the stream's dedupe stores it once.
type conflicts struct {
	ttl time.Duration
	mu  sync.Mutex
	kvs keyValues
	kv  jetstream.KeyValue
}

// keyValues makes key-value buckets (the runtime's Publisher, with the streams' replicas).
type keyValues interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// use gives the check its buckets' maker (the runtime hands its publisher to Routes as the
// function starts).
func (c *conflicts) use(kvs keyValues) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kvs = kvs
}

// bucket creates or binds the key-value bucket once; until it succeeds each claim tries again
// (and the sender gets 503, retry).
func (c *conflicts) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kv != nil {
		return c.kv, nil
	}
	if c.kvs == nil {
		return nil, errors.New("same-id check: no JetStream yet")
	}
	kv, err := c.kvs.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: ConflictBucket, TTL: c.ttl, History: 1,
		Storage:     jetstream.FileStorage,
		Description: "fingerprints of the events /v1/events accepted, by source and id (409 for the same id with other data)"})
	if err != nil {
		return nil, fmt.Errorf("same-id check bucket %s: %w", ConflictBucket, err)
	}
	c.kv = kv
	return kv, nil
}

// claim records ev's fingerprint under its source and id, or compares it with the one recorded:
// nil for a new event or the same event again, a 409 refusal for other data, an ordinary
// (transient) error when JetStream cannot answer.
func (c *conflicts) claim(ctx context.Context, ev cloudevents.Event, data any) error {
	kv, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	key, fp, err := fingerprint(ev, data)
	if err != nil {
		return err
	}
	for range 2 { // a key that expires between the create and the get is created again
		_, err = kv.Create(ctx, key, fp)
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue
		case err != nil:
			return err
		case bytes.Equal(e.Value(), fp):
			return nil
		}
		return runtime.Refuse(http.StatusConflict, "id", fmt.Sprintf("event %q of source %q was accepted with other data; "+
			"a new event needs a new id (the same id is for retries of the same event)", ev.ID(), ev.Source()))
	}
	return err
}

// fingerprint keys an event by its source and id, and fingerprints what it says: its type,
// subject and data as the contract's Go type re-encodes it, so that a retry with other whitespace
// or key order is still the same event.
func fingerprint(ev cloudevents.Event, data any) (string, []byte, error) {
	canonical, err := json.Marshal(data)
	if err != nil {
		return "", nil, fmt.Errorf("fingerprint event %s: %w", ev.ID(), err)
	}
	k := sha256.Sum256([]byte(ev.Source() + "\x00" + ev.ID()))
	h := sha256.New()
	for _, s := range []string{ev.Type(), ev.Subject()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(canonical)
	return hex.EncodeToString(k[:20]), h.Sum(nil), nil
}
