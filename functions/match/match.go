// Package match resolves the identities an event carries to one member (OneID), creating or merging
// members in one store transaction, and emits identity.resolved (and member.merged).
package match

import (
	"context"
	"fmt"
	"slices"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Name is the function's name: its durable consumer and the producer of its events.
const Name = "match"

// Consumes lists the events match resolves.
var Consumes = []string{events.MemberRegistered, events.OrderPaid, events.OrderRefunded, events.InteractionRecorded}

// Emits lists what match publishes: resolutions, merges, splits, erasures, pool changes, and the
// held events an operator releases from quarantine (of the types it consumes).
var Emits = append([]string{events.IdentityResolved, events.MemberMerged, events.MemberSplit, events.MemberErased, events.PoolChanged},
	Consumes...)

// Handler resolves identities under Rules. Keys seal plaintext phones (and the platforms' phone
// hashes); Keyer keys every identity (document keys, and the phone hashes it stores and publishes);
// Now is the clock; AdminToken guards the operator endpoints.
type Handler struct {
	Store      Store
	Keys       *pii.Keyring
	Keyer      *identity.Keyer
	Rules      *identity.Rules
	Ladder     loyalty.Ladder
	Now        func() time.Time
	AdminToken string
}

// Store is the part of the store match uses: transactions, and queries for the operator endpoints.
type Store interface {
	receipt.Transactor
	Query(ctx context.Context, q store.Query) ([]store.Document, error)
}

// Function is match as the runtime runs it: the consumer and its operator endpoints.
func (h *Handler) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Emits: Emits, Handle: h.Handle, Routes: h.Routes}
}

// Handle resolves one event. Its effect is keyed by the event (a receipt in the same transaction),
// so a redelivery returns the same events without touching members again.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	in, err := decode(ev)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	ids, dropped := normalize(in.identities)
	if dropped > 0 {
		runtime.Annotate(ctx, "droppedIdentities", fmt.Sprint(dropped))
	}
	in.identities = ids
	var p Plan
	// The receipt names the member: its events carry the member's identities, so erasing the
	// member deletes it.
	outs, err := receipt.OnceAbout(ctx, h.Store, Name, ev, h.Now, func(tx store.Tx) ([]cloudevents.Event, string, error) {
		released, err := h.released(tx, ev)
		if err != nil {
			return nil, "", err
		}
		now := h.Now()
		if p, err = h.decide(tx, member.OneIDFor(ev.Source(), ev.ID()), ids, in.occurred, now, released); err != nil {
			return nil, "", err
		}
		switch {
		case p.Quarantine != "":
			return nil, "", h.quarantine(tx, ev, p, now)
		case p.Unresolved != "" && moneyEvent(ev.Type()) && len(p.Erased) == 0:
			// An order or refund that reaches no member is money lost: ingest refuses one without a
			// resolvable identity, so one that still gets here (published past ingest) is
			// dead-lettered with the reason rather than acknowledged.
			return nil, "", runtime.Permanent(fmt.Errorf("%s %s resolves to no member: %s", ev.Type(), ev.ID(), p.Unresolved))
		case p.Unresolved != "":
			// Weak ids only (browsing before a login), or an erased member's event from before the
			// erasure (kept out on purpose; a dead letter would keep its personal data): acknowledged,
			// logged as unresolved.
			return nil, "", nil
		}
		outs, err := h.apply(tx, ev, in, p, now)
		return outs, p.Survivor.OneID, err
	})
	if err != nil {
		return nil, fmt.Errorf("resolve identities of %s %s: %w", ev.Type(), ev.ID(), err)
	}
	annotate(ctx, p, outs)
	return outs, nil
}

// moneyEvent says whether an event moves money: one that resolves to nobody is dead-lettered.
func moneyEvent(eventType string) bool {
	return eventType == events.OrderPaid || eventType == events.OrderRefunded
}

func annotate(ctx context.Context, p Plan, outs []cloudevents.Event) {
	switch {
	case p.Quarantine != "":
		runtime.Annotate(ctx, "quarantined", p.Quarantine)
	case p.Unresolved != "":
		runtime.Annotate(ctx, "unresolved", p.Unresolved)
	}
	if len(p.Blocked) > 0 {
		runtime.Annotate(ctx, "blockedIdentities", fmt.Sprint(len(p.Blocked)))
	}
	if len(outs) > 0 {
		if d, err := events.Decode[events.IdentityResolvedData](outs[len(outs)-1]); err == nil {
			runtime.SetOneID(ctx, d.OneID)
		}
	}
}

// normalize keeps the identities that normalise; a malformed one (a typo'd phone) is dropped
// rather than losing the whole order.
func normalize(raw []events.Identity) (ids []events.Identity, dropped int) {
	for _, id := range raw {
		norm, err := identity.NormalizeAll([]events.Identity{id})
		if err != nil {
			dropped++
			continue
		}
		for _, n := range norm {
			if !slices.Contains(ids, n) {
				ids = append(ids, n)
			}
		}
	}
	return ids, dropped
}
