package events

import (
	"context"
	"crypto/sha256"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Validating an event costs tens of microseconds; a handler's outputs are validated before its
// store transaction commits (shared/receipt) and again by the publisher, for handlers without a
// receipt. A memo in the context lets the second look skip what the first one passed: it remembers
// a digest of every attribute and the data, so a changed event is validated again.

type memoKey struct{}

type memo struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]struct{}
}

// WithValidationMemo returns a context in which ValidateOnce remembers the events it passed.
// The runtime gives one to each handled event.
func WithValidationMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &memo{seen: map[[sha256.Size]byte]struct{}{}})
}

// ValidateOnce is Validate, skipped for an identical event already validated under the same memo.
func ValidateOnce(ctx context.Context, ev cloudevents.Event) error {
	m, ok := ctx.Value(memoKey{}).(*memo)
	if !ok {
		return Validate(ev)
	}
	key := digest(ev)
	m.mu.Lock()
	_, done := m.seen[key]
	m.mu.Unlock()
	if done {
		return nil
	}
	if err := Validate(ev); err != nil {
		return err
	}
	m.mu.Lock()
	m.seen[key] = struct{}{}
	m.mu.Unlock()
	return nil
}

// digest covers everything Validate looks at: the context attributes and the data.
func digest(ev cloudevents.Event) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{ev.SpecVersion(), ev.ID(), ev.Source(), ev.Type(), ev.Subject(), ev.DataContentType(),
		ev.DataSchema(), ev.Time().String()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(ev.Data())
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
