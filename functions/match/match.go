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

// Handler resolves identities. Keys seal plaintext phones; Now is the clock.
type Handler struct {
	Store receipt.Transactor
	Keys  *pii.Keyring
	Now   func() time.Time
}

// Function is match as the runtime runs it.
func (h *Handler) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Handle: h.Handle}
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
	if !slices.ContainsFunc(ids, func(id events.Identity) bool { return !identity.IsWeak(id.Type) }) {
		// Weak ids (a cookie, a masked phone) never make a member on their own: acknowledged, unresolved.
		runtime.Annotate(ctx, "outcome", "no strong identity")
		return nil, nil
	}
	outs, err := receipt.Once(ctx, h.Store, Name, ev, h.Now, func(tx store.Tx) ([]cloudevents.Event, error) {
		return h.resolve(tx, ev, in, ids)
	})
	if err != nil {
		return nil, fmt.Errorf("resolve identities of %s %s: %w", ev.Type(), ev.ID(), err)
	}
	if len(outs) > 0 {
		if d, err := events.Decode[events.IdentityResolvedData](outs[len(outs)-1]); err == nil {
			runtime.SetOneID(ctx, d.OneID)
		}
	}
	return outs, nil
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

// resolve reads every identity link and the members they name, then writes: a new member, the
// one found, or a merge into the oldest. All reads come before writes.
func (h *Handler) resolve(tx store.Tx, ev cloudevents.Event, in source, ids []events.Identity) ([]cloudevents.Event, error) {
	now := h.Now()
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = identity.Key(id)
	}
	links, err := tx.GetAll(member.Identities, keys)
	if err != nil {
		return nil, err
	}
	found, err := linkedMembers(tx, ids, links)
	if err != nil {
		return nil, err
	}
	var survivor member.Member
	var absorbed []member.Member
	if len(found) == 0 {
		survivor = member.Member{OneID: member.OneIDFor(ev.Source(), ev.ID()), CreatedAt: now}
	} else {
		survivor, absorbed = found[0], found[1:]
	}
	var relink []member.StoredIdentity
	for _, a := range absorbed {
		survivor.Identities = append(survivor.Identities, a.Identities...)
		relink = append(relink, a.Identities...)
		for _, c := range a.Channels {
			if !slices.Contains(survivor.Channels, c) {
				survivor.Channels = append(survivor.Channels, c)
			}
		}
		survivor.MergedFrom = append(append(survivor.MergedFrom, a.OneID), a.MergedFrom...)
	}
	added, err := h.addIdentities(&survivor, ids, in.channel, now)
	if err != nil {
		return nil, err
	}
	relink = append(relink, added...)
	newChannel := in.channel != "" && !slices.Contains(survivor.Channels, in.channel)
	if newChannel {
		survivor.Channels = append(survivor.Channels, in.channel)
	}
	// A member seen again with nothing new is not rewritten: one read, no write.
	if len(relink) > 0 || len(found) == 0 || newChannel {
		if err := write(tx, survivor, absorbed, relink, now); err != nil {
			return nil, err
		}
	}
	return h.emit(ev, in, ids, survivor, absorbed, now)
}

// linkedMembers loads the live members that the event's strong identities point at, oldest first.
// Weak identities never join two members, so their links are not followed.
func linkedMembers(tx store.Tx, ids []events.Identity, links []store.Document) ([]member.Member, error) {
	var oneIDs []string
	for i, doc := range links {
		if !doc.Exists || identity.IsWeak(ids[i].Type) {
			continue
		}
		var link member.IdentityLink
		if err := doc.DataTo(&link); err != nil {
			return nil, err
		}
		if !slices.Contains(oneIDs, link.OneID) {
			oneIDs = append(oneIDs, link.OneID)
		}
	}
	if len(oneIDs) == 0 {
		return nil, nil
	}
	docs, err := tx.GetAll(member.Members, oneIDs)
	if err != nil {
		return nil, err
	}
	found := make([]member.Member, 0, len(docs))
	for _, doc := range docs {
		var m member.Member
		if err := doc.DataTo(&m); err != nil {
			return nil, fmt.Errorf("identity link to a missing member: %w", err)
		}
		if m.MergedInto != "" {
			return nil, fmt.Errorf("identity link still names absorbed member %s", m.OneID)
		}
		found = append(found, m)
	}
	// The older member survives a merge; equal times fall back to the id, so every replica agrees.
	slices.SortFunc(found, func(a, b member.Member) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(a.OneID, b.OneID)
	})
	return found, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// addIdentities attaches the event's identities the member does not have yet and returns them; a
// plaintext phone is sealed, never stored in clear.
func (h *Handler) addIdentities(m *member.Member, ids []events.Identity, channel string, now time.Time) ([]member.StoredIdentity, error) {
	var added []member.StoredIdentity
	have := make(map[string]bool, len(m.Identities))
	for _, s := range m.Identities {
		have[s.Type+"\x00"+s.Key] = true
	}
	for _, id := range ids {
		key := identity.Key(id)
		if have[id.Type+"\x00"+key] {
			continue
		}
		have[id.Type+"\x00"+key] = true
		s := member.StoredIdentity{Type: id.Type, Scope: id.Scope, Key: key, Value: id.Value, Channel: channel, FirstSeen: now}
		if id.Type == identity.Phone {
			sealed, err := h.Keys.Seal(id.Value, identity.Phone)
			if err != nil {
				return nil, err
			}
			s.Value, s.Sealed, s.Masked = "", sealed, identity.MaskPhone(id.Value)
		}
		m.Identities = append(m.Identities, s)
		added = append(added, s)
	}
	m.Pool = poolOf(m.Identities)
	return added, nil
}

func poolOf(ids []member.StoredIdentity) string {
	for _, s := range ids {
		if s.Type == identity.Phone || s.Type == identity.WeComExternalUserID {
			return member.PoolPlaintext
		}
	}
	return member.PoolCiphertext
}

// write stores the survivor, marks absorbed members, and points the new and absorbed identities at
// the survivor.
func write(tx store.Tx, survivor member.Member, absorbed []member.Member, relink []member.StoredIdentity, now time.Time) error {
	survivor.UpdatedAt = now
	if err := tx.Set(member.Members, survivor.OneID, survivor); err != nil {
		return err
	}
	for _, a := range absorbed {
		a.MergedInto, a.UpdatedAt = survivor.OneID, now
		if err := tx.Set(member.Members, a.OneID, a); err != nil {
			return err
		}
	}
	for _, s := range relink {
		link := member.IdentityLink{OneID: survivor.OneID, Type: s.Type, Since: s.FirstSeen}
		if err := tx.Set(member.Identities, s.Key, link); err != nil {
			return err
		}
	}
	return nil
}

// emit builds member.merged (when members merged) then identity.resolved, with ids derived from the input.
func (h *Handler) emit(ev cloudevents.Event, in source, ids []events.Identity, survivor member.Member, absorbed []member.Member, now time.Time) ([]cloudevents.Event, error) {
	var outs []cloudevents.Event
	if len(absorbed) > 0 {
		merged := events.MemberMergedData{SurvivorOneID: survivor.OneID, SourceID: ev.ID(), MergedAt: now, LinkedBy: linkedBy(ids, absorbed)}
		for _, a := range absorbed {
			merged.AbsorbedOneIDs = append(merged.AbsorbedOneIDs, a.OneID)
		}
		out, err := events.New(events.MemberMerged, events.DerivedID(Name, ev.ID(), 0), events.Source(Name), now, merged)
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	safe := identity.WithoutPlaintext(ids)
	resolved := in.resolved(safe)
	resolved.OneID, resolved.SourceType, resolved.SourceID = survivor.OneID, ev.Type(), ev.ID()
	out, err := events.New(events.IdentityResolved, events.DerivedID(Name, ev.ID(), 1), events.Source(Name), now, resolved)
	if err != nil {
		return nil, err
	}
	return append(outs, out), nil
}

// linkedBy names the identity types of the event that absorbed members already had.
func linkedBy(ids []events.Identity, absorbed []member.Member) []string {
	var types []string
	for _, a := range absorbed {
		for _, s := range a.Identities {
			for _, id := range ids {
				if identity.Key(id) == s.Key && !identity.IsWeak(id.Type) && !slices.Contains(types, id.Type) {
					types = append(types, id.Type)
				}
			}
		}
	}
	return types
}
