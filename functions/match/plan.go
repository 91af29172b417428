package match

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// reader is what deciding needs from a transaction: reads only.
type reader interface {
	GetAll(collection string, ids []string) ([]store.Document, error)
}

// seen is one normalised identity of the event with what the store knows of it. raw is the identity
// as it arrived (normalised, unkeyed: a phone, a platform's hash); id, key and tomb are its keyed
// form (identity.Form) that the store already knows, else its form under the current key.
type seen struct {
	raw      events.Identity
	id       events.Identity
	key      string
	tomb     string
	forms    []identity.Form
	rule     identity.TypeRule
	link     *member.IdentityLink // nil: never seen
	erasedAt *time.Time           // set: erased on request at that time
}

// Plan is what an event does to the identity graph, decided from reads only, so the merge
// preview and the handler take the same decision.
type Plan struct {
	// Survivor is the member the event resolves to (new when Created).
	Survivor member.Member
	Created  bool
	// Absorbed are merged into Survivor.
	Absorbed []member.Member
	// Attach are the event's identities Survivor gains; Relink are identities whose link must point
	// at Survivor (attached, absorbed, or weak ones moving over).
	Attach []seen
	Relink []member.StoredIdentity
	// Detach are weak identities leaving another member for Survivor, by member.
	Detach map[string][]string
	// MergeCauses are the keys of the links through which members merged.
	MergeCauses []string
	LinkedBy    []string
	// Conflicts are refusals by a limit; Blocked and Erased identities were ignored.
	Conflicts []string
	Blocked   []events.Identity
	Erased    []events.Identity
	// Quarantine, if set, says why the event waits for an operator instead.
	Quarantine string
	// Unresolved, if set, says why the event resolves to nobody (only weak ids, say).
	Unresolved string
	others     map[string]member.Member
	// usable are the event's identities neither blocked nor erased, keyed: what it reports.
	usable []seen
}

// decide reads the links, tombstones and members an event's identities touch and plans the
// outcome under the rules. occurred is when the event happened (for erasure tombstones);
// released lifts the fan-in guard for an event an operator released from quarantine.
func (h *Handler) decide(tx reader, newOneID string, ids []events.Identity, occurred, now time.Time, released bool) (Plan, error) {
	var p Plan
	usable := h.screen(&p, ids)
	known, err := h.lookup(tx, usable)
	if err != nil {
		return p, err
	}
	usable = usable[:0]
	for _, s := range known {
		if s.erasedAt != nil && !occurred.After(*s.erasedAt) {
			p.Erased = append(p.Erased, s.raw) // a late event never brings erased data back
			continue
		}
		usable = append(usable, s)
	}
	p.usable = usable
	if !slices.ContainsFunc(usable, func(s seen) bool { return s.rule.Strength != identity.Weak }) {
		p.Unresolved = "no strong or scoped identity"
		return p, nil
	}
	p.others, err = loadOwners(tx, usable)
	if err != nil {
		return p, err
	}
	candidates, causes := h.candidates(usable, p.others)
	if reason := h.guard(candidates, causes, usable, released); reason != "" {
		p.Quarantine = reason
		for _, c := range candidates {
			p.Survivor.MergedFrom = append(p.Survivor.MergedFrom, c.OneID)
		}
		return p, nil
	}
	h.choose(&p, candidates, causes, usable, newOneID, now)
	h.attach(&p, usable, now)
	return p, nil
}

// screen drops blocklisted values and keeps the rest, with their rules and their keyed forms.
func (h *Handler) screen(p *Plan, ids []events.Identity) []seen {
	out := make([]seen, 0, len(ids))
	for _, id := range ids {
		if _, blocked := h.Rules.Blocked(id); blocked {
			p.Blocked = append(p.Blocked, id)
			continue
		}
		forms := h.Keyer.Forms(id)
		out = append(out, seen{raw: id, forms: forms, rule: h.Rules.Rule(id.Type)}.as(forms[0]))
	}
	return out
}

// as is s in one of its keyed forms.
func (s seen) as(f identity.Form) seen {
	s.id, s.key, s.tomb = f.Identity, f.Key, f.Tombstone
	return s
}

// lookup reads each identity's link and tombstone under every identity key (one during steady
// state, the current one first during a rotation) in two batched reads. An identity the store
// knows under an older key keeps that form until a rekey moves it; its latest tombstone counts.
func (h *Handler) lookup(tx reader, ids []seen) ([]seen, error) {
	var keys, tombs []string
	for _, s := range ids {
		for _, f := range s.forms {
			keys, tombs = append(keys, f.Key), append(tombs, f.Tombstone)
		}
	}
	links, err := tx.GetAll(member.Identities, keys)
	if err != nil {
		return nil, err
	}
	stones, err := tx.GetAll(member.Tombstones, tombs)
	if err != nil {
		return nil, err
	}
	at := 0
	for i := range ids {
		for _, f := range ids[i].forms {
			if err := ids[i].know(f, links[at], stones[at]); err != nil {
				return nil, err
			}
			at++
		}
	}
	return ids, nil
}

// know takes what the store holds under one form: the first form with a link is the identity's.
func (s *seen) know(f identity.Form, link, stone store.Document) error {
	if link.Exists && s.link == nil {
		var l member.IdentityLink
		if err := link.DataTo(&l); err != nil {
			return err
		}
		*s = s.as(f)
		s.link = &l
	}
	if stone.Exists {
		var t member.Tombstone
		if err := stone.DataTo(&t); err != nil {
			return err
		}
		if s.erasedAt == nil || t.ErasedAt.After(*s.erasedAt) {
			s.erasedAt = &t.ErasedAt
		}
	}
	return nil
}

// loadOwners reads every member an identity of the event points at.
func loadOwners(tx reader, ids []seen) (map[string]member.Member, error) {
	var oneIDs []string
	for _, s := range ids {
		if s.link != nil && !slices.Contains(oneIDs, s.link.OneID) {
			oneIDs = append(oneIDs, s.link.OneID)
		}
	}
	owners := make(map[string]member.Member, len(oneIDs))
	if len(oneIDs) == 0 {
		return owners, nil
	}
	docs, err := tx.GetAll(member.Members, oneIDs)
	if err != nil {
		return nil, err
	}
	for _, doc := range docs {
		var m member.Member
		if err := doc.DataTo(&m); err != nil {
			return nil, fmt.Errorf("identity link to a missing member: %w", err)
		}
		if m.MergedInto != "" {
			return nil, fmt.Errorf("identity link still names absorbed member %s", m.OneID)
		}
		owners[m.OneID] = m
	}
	return owners, nil
}

// candidates are the members the event's strong identities point at, and those its scoped
// identities point at when the event also carries their platform-level id (a shop's open id next to
// the platform's union id is the same person), oldest first; failing any, the member its
// highest-priority scoped identity points at. causes maps each candidate to the link keys that
// point at it.
func (h *Handler) candidates(ids []seen, owners map[string]member.Member) ([]member.Member, map[string][]string) {
	causes := map[string][]string{}
	var out []member.Member
	add := func(s seen) {
		if _, ok := causes[s.link.OneID]; !ok {
			out = append(out, owners[s.link.OneID])
		}
		causes[s.link.OneID] = append(causes[s.link.OneID], s.key)
	}
	carries := func(idType string) bool {
		return slices.ContainsFunc(ids, func(s seen) bool { return s.id.Type == idType })
	}
	for _, s := range ids {
		switch {
		case s.link == nil:
		case s.rule.Strength == identity.Strong:
			add(s)
		case s.rule.Strength == identity.Scoped && carries(s.rule.LinksVia):
			add(s)
		}
	}
	if len(out) == 0 {
		for _, s := range byPriority(ids) {
			if s.link != nil && s.rule.Strength == identity.Scoped {
				add(s)
				break
			}
		}
	}
	slices.SortFunc(out, olderFirst)
	return out, causes
}

// olderFirst orders members by creation, then id, so every replica picks the same survivor.
func olderFirst(a, b member.Member) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.OneID, b.OneID)
}

func byPriority(ids []seen) []seen {
	out := slices.Clone(ids)
	slices.SortStableFunc(out, func(a, b seen) int { return a.rule.Priority - b.rule.Priority })
	return out
}

// guard is the fan-in guard: an event joining more members than FanIn, or merging through a link
// that has already caused MaxMergesPerIdentity merges, waits for review.
func (h *Handler) guard(candidates []member.Member, causes map[string][]string, ids []seen, released bool) string {
	if released || len(candidates) < 2 {
		return ""
	}
	if len(candidates) > h.Rules.FanIn {
		return fmt.Sprintf("joins %d members, more than fanIn %d", len(candidates), h.Rules.FanIn)
	}
	for _, s := range ids {
		if s.link != nil && s.rule.Strength == identity.Strong && s.link.Merges >= h.Rules.MaxMergesPerIdentity {
			return fmt.Sprintf("%s has already caused %d merges", s.id.Type, s.link.Merges)
		}
	}
	return ""
}

// choose picks the survivor and absorbs the other candidates unless a per-member limit forbids
// it; then the event resolves to the candidate its highest-priority identity points at.
func (h *Handler) choose(p *Plan, candidates []member.Member, causes map[string][]string, ids []seen, newOneID string, now time.Time) {
	if len(candidates) == 0 {
		p.Survivor, p.Created = member.Member{OneID: newOneID, CreatedAt: now}, true
		return
	}
	if len(candidates) > 1 {
		if over := h.overLimit(candidates, ids); over != "" {
			p.Conflicts = append(p.Conflicts, over)
			p.Survivor = candidates[0]
			for _, s := range byPriority(ids) {
				if s.link != nil && s.rule.Strength == identity.Strong {
					p.Survivor = p.others[s.link.OneID]
					break
				}
			}
			return
		}
	}
	p.Survivor, p.Absorbed = candidates[0], candidates[1:]
	if len(p.Absorbed) > 0 {
		for _, c := range candidates {
			p.MergeCauses = append(p.MergeCauses, causes[c.OneID]...)
		}
	}
	for _, a := range p.Absorbed {
		p.Relink = append(p.Relink, a.Identities...)
		p.Survivor.Identities = append(p.Survivor.Identities, a.Identities...)
		for _, c := range a.Channels {
			if !slices.Contains(p.Survivor.Channels, c) {
				p.Survivor.Channels = append(p.Survivor.Channels, c)
			}
		}
		p.Survivor.MergedFrom = append(append(p.Survivor.MergedFrom, a.OneID), a.MergedFrom...)
	}
	for _, s := range ids {
		if s.link != nil && s.rule.Strength != identity.Weak && s.link.OneID != p.Survivor.OneID && !slices.Contains(p.LinkedBy, s.id.Type) &&
			slices.ContainsFunc(p.Absorbed, func(m member.Member) bool { return m.OneID == s.link.OneID }) {
			p.LinkedBy = append(p.LinkedBy, s.id.Type)
		}
	}
}

// overLimit says which type the merged member would hold too many of, or "".
func (h *Handler) overLimit(candidates []member.Member, ids []seen) string {
	keys := map[string]map[string]bool{}
	count := func(idType, key string) {
		if keys[idType] == nil {
			keys[idType] = map[string]bool{}
		}
		keys[idType][key] = true
	}
	for _, c := range candidates {
		for _, s := range c.Identities {
			count(s.Type, s.Key)
		}
	}
	for _, s := range ids {
		count(s.id.Type, s.key)
	}
	for _, t := range sortedKeys(keys) {
		if limit := h.Rules.Rule(t).MaxPerMember; len(keys[t]) > limit && h.Rules.Rule(t).Strength != identity.Weak {
			return fmt.Sprintf("limit: merging would give %d %s, at most %d", len(keys[t]), t, limit)
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// attach adds the event's identities the survivor lacks: an identity another (unmerged) member
// holds stays there unless it is weak; a type at its limit is refused as a conflict.
func (h *Handler) attach(p *Plan, ids []seen, now time.Time) {
	has := map[string]bool{}
	perType := map[string]int{}
	for _, s := range p.Survivor.Identities {
		has[s.Type+"\x00"+s.Key] = true
		perType[s.Type]++
	}
	for _, s := range ids {
		if has[s.id.Type+"\x00"+s.key] {
			continue
		}
		owner := ""
		if s.link != nil && s.link.OneID != p.Survivor.OneID && !slices.ContainsFunc(p.Absorbed, func(m member.Member) bool { return m.OneID == s.link.OneID }) {
			owner = s.link.OneID
		}
		if owner != "" && s.rule.Strength != identity.Weak {
			continue // it belongs to a member this event did not merge
		}
		if perType[s.id.Type] >= s.rule.MaxPerMember {
			if s.rule.Strength != identity.Weak {
				p.Conflicts = append(p.Conflicts, fmt.Sprintf("limit: already %d %s", perType[s.id.Type], s.id.Type))
			}
			continue
		}
		if owner != "" {
			if p.Detach == nil {
				p.Detach = map[string][]string{}
			}
			p.Detach[owner] = append(p.Detach[owner], s.key)
		}
		has[s.id.Type+"\x00"+s.key] = true
		perType[s.id.Type]++
		p.Attach = append(p.Attach, s)
	}
}
