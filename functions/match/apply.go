package match

import (
	"fmt"
	"slices"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// apply writes a plan and returns the events that report it. Its reads (the links it rewrites)
// come before its writes.
func (h *Handler) apply(tx store.Tx, ev cloudevents.Event, in source, p Plan, now time.Time) ([]cloudevents.Event, error) {
	survivor := p.Survivor
	poolBefore := survivor.Pool
	added, err := h.stored(p.Attach, in.channel, now)
	if err != nil {
		return nil, err
	}
	relink := append(slices.Clone(p.Relink), added...)
	merges, err := linkMerges(tx, relink)
	if err != nil {
		return nil, err
	}
	survivor.Identities = append(survivor.Identities, added...)
	newChannel := in.channel != "" && !slices.Contains(survivor.Channels, in.channel)
	if newChannel {
		survivor.Channels = append(survivor.Channels, in.channel)
	}
	survivor.Pool = poolOf(survivor.Identities)
	h.record(&survivor, p, ev.ID(), now)
	// A member seen again with nothing new is not rewritten: reads only.
	if !p.Created && len(relink) == 0 && !newChannel && len(p.Absorbed) == 0 && len(p.Conflicts) == 0 {
		return h.emit(ev, in, survivor, p, "", now)
	}
	if err := h.write(tx, survivor, p, relink, merges, ev.ID(), now); err != nil {
		return nil, err
	}
	poolFrom := ""
	if !p.Created && poolBefore != survivor.Pool {
		poolFrom = poolBefore
	}
	return h.emit(ev, in, survivor, p, poolFrom, now)
}

// stored turns identities into what the member document keeps, keyed: a plaintext phone is sealed
// and masked; a platform's phone hash is kept as its keyed value, the hash itself only sealed (a
// rekey under a new identity key needs it).
func (h *Handler) stored(ids []seen, channel string, now time.Time) ([]member.StoredIdentity, error) {
	out := make([]member.StoredIdentity, 0, len(ids))
	for _, id := range ids {
		s := member.StoredIdentity{Type: id.id.Type, Scope: id.id.Scope, Key: id.key, Value: id.id.Value, Channel: channel, FirstSeen: now}
		if id.raw.Type == identity.Phone || identity.IsPhoneHash(id.raw.Type) {
			sealed, err := h.Keys.Seal(id.raw.Value, id.raw.Type)
			if err != nil {
				return nil, err
			}
			s.Sealed = sealed
		}
		if id.raw.Type == identity.Phone {
			s.Value, s.Masked = "", identity.MaskPhone(id.raw.Value)
		}
		out = append(out, s)
	}
	return out, nil
}

// linkMerges reads the merge counts of the links about to be rewritten, so rewriting keeps them.
func linkMerges(tx store.Tx, relink []member.StoredIdentity) (map[string]int, error) {
	keys := make([]string, 0, len(relink))
	for _, s := range relink {
		if !slices.Contains(keys, s.Key) {
			keys = append(keys, s.Key)
		}
	}
	out := make(map[string]int, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	docs, err := tx.GetAll(member.Identities, keys)
	if err != nil {
		return nil, err
	}
	for i, d := range docs {
		var l member.IdentityLink
		if d.Exists {
			if err := d.DataTo(&l); err != nil {
				return nil, err
			}
		}
		out[keys[i]] = l.Merges
	}
	return out, nil
}

// record adds the audit history of this event's merges and conflicts to the survivor.
func (h *Handler) record(survivor *member.Member, p Plan, sourceID string, now time.Time) {
	if len(p.Absorbed) > 0 {
		e := member.HistoryEntry{At: now, Kind: member.HistoryMerged, SourceID: sourceID, Types: p.LinkedBy}
		for _, a := range p.Absorbed {
			e.OneIDs = append(e.OneIDs, a.OneID)
		}
		survivor.History = append(survivor.History, e)
	}
	for _, c := range p.Conflicts {
		survivor.History = append(survivor.History, member.HistoryEntry{At: now, Kind: member.HistoryConflict, SourceID: sourceID, Detail: c})
	}
}

// write stores the survivor, the absorbed members, members losing weak identities, the links and
// the conflicts.
func (h *Handler) write(tx store.Tx, survivor member.Member, p Plan, relink []member.StoredIdentity, merges map[string]int, sourceID string, now time.Time) error {
	survivor.UpdatedAt = now
	if err := tx.Set(member.Members, survivor.OneID, survivor); err != nil {
		return err
	}
	for _, a := range p.Absorbed {
		a.MergedInto, a.UpdatedAt = survivor.OneID, now
		a.History = append(a.History, member.HistoryEntry{At: now, Kind: member.HistoryAbsorbed, OneIDs: []string{survivor.OneID}, SourceID: sourceID})
		if err := tx.Set(member.Members, a.OneID, a); err != nil {
			return err
		}
	}
	for oneID, keys := range p.Detach {
		m := p.others[oneID]
		m.Identities = slices.DeleteFunc(m.Identities, func(s member.StoredIdentity) bool { return slices.Contains(keys, s.Key) })
		m.Pool, m.UpdatedAt = poolOf(m.Identities), now
		if err := tx.Set(member.Members, oneID, m); err != nil {
			return err
		}
	}
	for _, s := range relink {
		n := merges[s.Key]
		if slices.Contains(p.MergeCauses, s.Key) {
			n++
		}
		if err := tx.Set(member.Identities, s.Key, member.IdentityLink{OneID: survivor.OneID, Type: s.Type, Since: s.FirstSeen, Merges: n}); err != nil {
			return err
		}
	}
	for _, key := range p.MergeCauses {
		if !slices.ContainsFunc(relink, func(s member.StoredIdentity) bool { return s.Key == key }) {
			// A cause that already pointed at the survivor: count the merge on it too.
			if err := bumpMerges(tx, key, survivor, merges); err != nil {
				return err
			}
		}
	}
	for i, c := range p.Conflicts {
		doc := member.Conflict{OneID: survivor.OneID, Reason: c, SourceID: sourceID, At: now}
		if err := tx.Set(member.Conflicts, events.DerivedID(Name, sourceID, i), doc); err != nil {
			return err
		}
	}
	return nil
}

func bumpMerges(tx store.Tx, key string, survivor member.Member, merges map[string]int) error {
	for _, s := range survivor.Identities {
		if s.Key == key {
			return tx.Set(member.Identities, key, member.IdentityLink{OneID: survivor.OneID, Type: s.Type, Since: s.FirstSeen, Merges: merges[key] + 1})
		}
	}
	return fmt.Errorf("merge cause %s is not an identity of %s", key, survivor.OneID)
}

func poolOf(ids []member.StoredIdentity) string {
	for _, s := range ids {
		if s.Type == identity.Phone || s.Type == identity.WeComExternalUserID {
			return member.PoolPlaintext
		}
	}
	return member.PoolCiphertext
}

// emit builds member.merged (when members merged), pool.changed (when the survivor changed pool)
// and identity.resolved, with ids derived from the input.
func (h *Handler) emit(ev cloudevents.Event, in source, survivor member.Member, p Plan, poolFrom string, now time.Time) ([]cloudevents.Event, error) {
	var outs []cloudevents.Event
	if len(p.Absorbed) > 0 {
		merged := events.MemberMergedData{SurvivorOneID: survivor.OneID, SourceID: ev.ID(), MergedAt: now, LinkedBy: p.LinkedBy}
		for _, a := range p.Absorbed {
			merged.AbsorbedOneIDs = append(merged.AbsorbedOneIDs, a.OneID)
		}
		out, err := events.New(events.MemberMerged, events.DerivedID(Name, ev.ID(), 0), events.Source(Name), now, merged)
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	if poolFrom != "" {
		out, err := events.New(events.PoolChanged, events.DerivedID(Name, ev.ID(), 2), events.Source(Name), now, events.PoolChangedData{
			OneID: survivor.OneID, From: poolFrom, To: survivor.Pool, Reason: poolReason(p), SourceID: ev.ID(), ChangedAt: now})
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	kept := make([]events.Identity, 0, len(p.usable))
	var keys []string
	for _, s := range p.usable { // neither blocked nor erased, keyed
		kept = append(kept, s.id)
		if !slices.Contains(keys, s.key) {
			keys = append(keys, s.key)
		}
	}
	resolved := in.resolved(identity.WithoutPlaintext(kept))
	resolved.OneID, resolved.SourceType, resolved.SourceID, resolved.IdentityKeys = survivor.OneID, ev.Type(), ev.ID(), keys
	if at, ok := events.ReceivedAt(ev); ok {
		resolved.ReceivedAt = &at // ingest's clock: the loyalty caps count this day
	}
	out, err := events.New(events.IdentityResolved, events.DerivedID(Name, ev.ID(), 1), events.Source(Name), now, resolved)
	if err != nil {
		return nil, err
	}
	return append(outs, out), nil
}

func poolReason(p Plan) string {
	for _, s := range p.Attach {
		if s.id.Type == identity.Phone || s.id.Type == identity.WeComExternalUserID {
			return s.id.Type
		}
	}
	return "merge"
}
