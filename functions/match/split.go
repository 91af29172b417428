package match

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

type splitRequest struct {
	Identities []events.Identity `json:"identities"`
	Reason     string            `json:"reason"`
}

// errBadSplit is a split request the member's identities cannot satisfy.
var errBadSplit = errors.New("bad split")

// memberAction routes POST /v1/members/{oneId}:split (Go's mux cannot put a wildcard and a
// literal in one path segment).
func (h *Handler) memberAction(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher) {
	oneID, ok := strings.CutSuffix(r.PathValue("target"), ":split")
	if !ok {
		runtime.WriteError(w, http.StatusNotFound, "", "no such action; POST /v1/members/{oneId}:split")
		return
	}
	var req splitRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		runtime.WriteError(w, runtime.BodyStatus(err), "body", `want {"identities":[{"type","value","scope"}],"reason"}: %v`, err)
		return
	}
	ids, dropped := normalize(req.Identities)
	if len(ids) == 0 || dropped > 0 {
		runtime.WriteError(w, http.StatusBadRequest, "identities", "want at least one identity, each valid (%d invalid)", dropped)
		return
	}
	h.split(w, r, pub, oneID, ids, req.Reason)
}

// split undoes a wrong merge: the named identities leave the member for the member they came
// from (restored) or a new one; orders, points and interactions follow through member.split.
func (h *Handler) split(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher, oneID string, ids []events.Identity, reason string) {
	who, now := runtime.Operator(r), h.Now()
	var out events.MemberSplitData
	var pools []events.PoolChangedData
	err := h.Store.RunTransaction(r.Context(), func(_ context.Context, tx store.Tx) error {
		var err error
		out, pools, err = h.splitTx(tx, oneID, ids, reason, who, now)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidName):
		runtime.WriteError(w, http.StatusNotFound, "", "member %s not found", oneID)
		return
	case errors.Is(err, errBadSplit):
		runtime.WriteError(w, http.StatusBadRequest, "identities", "%v", err)
		return
	case err != nil:
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "split: %v", err)
		return
	}
	evs, err := splitEvents(out, pools, now)
	if err == nil {
		err = pub.Publish(r.Context(), nil, evs)
	}
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "split, but not yet announced: %v", err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, out)
}

func splitEvents(out events.MemberSplitData, pools []events.PoolChangedData, now time.Time) ([]cloudevents.Event, error) {
	ev, err := events.New(events.MemberSplit, out.RequestID, events.Source(Name), now, out)
	if err != nil {
		return nil, err
	}
	evs := []cloudevents.Event{ev}
	for i, p := range pools {
		pe, err := events.New(events.PoolChanged, events.DerivedID(Name, out.RequestID, i+1), events.Source(Name), now, p)
		if err != nil {
			return nil, err
		}
		evs = append(evs, pe)
	}
	return evs, nil
}

// splitTx moves the identities and writes both members, their links and the audit.
func (h *Handler) splitTx(tx store.Tx, oneID string, ids []events.Identity, reason, who string, now time.Time) (events.MemberSplitData, []events.PoolChangedData, error) {
	var from member.Member
	if err := tx.Get(member.Members, oneID, &from); err != nil {
		return events.MemberSplitData{}, nil, err
	}
	if from.MergedInto != "" {
		return events.MemberSplitData{}, nil, fmt.Errorf("%w: %s was merged into %s; split that member", errBadSplit, oneID, from.MergedInto)
	}
	var keys []string // under every identity key: the member may hold one from before a rotation
	for _, id := range ids {
		for _, k := range h.Keyer.Keys(id) {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	leaving, staying := partition(from.Identities, keys)
	if len(leaving) == 0 || len(staying) == 0 {
		return events.MemberSplitData{}, nil, fmt.Errorf("%w: name some, not all, of %s's identities", errBadSplit, oneID)
	}
	absorbed, err := tx.GetAll(member.Members, from.MergedFrom)
	if err != nil {
		return events.MemberSplitData{}, nil, err
	}
	requestID := splitRequestID(oneID, leaving)
	to := restoreTarget(absorbed, leaving)
	if to.OneID == "" {
		to = member.Member{OneID: member.OneIDFor("split", requestID), CreatedAt: now}
	}
	out := events.MemberSplitData{FromOneID: from.OneID, ToOneID: to.OneID, FormerOneIDs: append([]string{}, from.MergedFrom...),
		IdentityKeys: uniqueKeys(leaving), RemainingKeys: append([]string{}, h.strongKeys(staying)...), Types: []string{}, Reason: reason, By: who, RequestID: requestID, SplitAt: now}
	for _, s := range leaving {
		if !slices.Contains(out.Types, s.Type) {
			out.Types = append(out.Types, s.Type)
		}
	}
	pools := h.moveIdentities(&from, &to, leaving, staying, out, now)
	for _, m := range []member.Member{from, to} {
		if err := tx.Set(member.Members, m.OneID, m); err != nil {
			return out, nil, err
		}
	}
	for _, s := range leaving {
		if err := tx.Set(member.Identities, s.Key, member.IdentityLink{OneID: to.OneID, Type: s.Type, Since: s.FirstSeen}); err != nil {
			return out, nil, err
		}
	}
	return out, pools, audit(tx, "member.split", who, from.OneID, now)
}

// partition separates a member's identities by key.
func partition(ids []member.StoredIdentity, keys []string) (leaving, staying []member.StoredIdentity) {
	for _, s := range ids {
		if slices.Contains(keys, s.Key) {
			leaving = append(leaving, s)
		} else {
			staying = append(staying, s)
		}
	}
	return leaving, staying
}

// restoreTarget finds the absorbed member the leaving identities all came from, if any.
func restoreTarget(absorbed []store.Document, leaving []member.StoredIdentity) member.Member {
	for _, d := range absorbed {
		var a member.Member
		if d.DataTo(&a) != nil {
			continue
		}
		had := uniqueKeys(a.Identities)
		if !slices.ContainsFunc(leaving, func(s member.StoredIdentity) bool { return !slices.Contains(had, s.Key) }) {
			return a
		}
	}
	return member.Member{}
}

// strongKeys are the keys (former ones too: orders keep the keys they were resolved with) of the
// identities that can tie an order to a member.
func (h *Handler) strongKeys(ids []member.StoredIdentity) []string {
	var out []string
	for _, s := range ids {
		if h.Rules.Rule(s.Type).Strength == identity.Weak {
			continue
		}
		for _, k := range s.Keys() {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// moveIdentities rewrites both members and returns their pool changes.
func (h *Handler) moveIdentities(from, to *member.Member, leaving, staying []member.StoredIdentity, out events.MemberSplitData, now time.Time) []events.PoolChangedData {
	fromPool, toPool := from.Pool, to.Pool
	from.Identities, from.Pool, from.UpdatedAt = staying, poolOf(staying), now
	from.MergedFrom = slices.DeleteFunc(from.MergedFrom, func(id string) bool { return id == to.OneID || slices.Contains(to.MergedFrom, id) })
	from.History = append(from.History, member.HistoryEntry{At: now, Kind: member.HistorySplit, OneIDs: []string{to.OneID},
		Types: out.Types, By: out.By, Detail: out.Reason, SourceID: out.RequestID})
	restored := to.MergedInto != ""
	to.Identities, to.Pool, to.MergedInto, to.UpdatedAt = leaving, poolOf(leaving), "", now
	to.Channels = nil
	for _, s := range leaving {
		if s.Channel != "" && !slices.Contains(to.Channels, s.Channel) {
			to.Channels = append(to.Channels, s.Channel)
		}
	}
	kind := member.HistorySplit
	if restored {
		kind = member.HistoryRestored
	}
	to.History = append(to.History, member.HistoryEntry{At: now, Kind: kind, OneIDs: []string{from.OneID}, Types: out.Types,
		By: out.By, Detail: out.Reason, SourceID: out.RequestID})
	var pools []events.PoolChangedData
	if fromPool != from.Pool {
		pools = append(pools, events.PoolChangedData{OneID: from.OneID, From: fromPool, To: from.Pool, Reason: "split", SourceID: out.RequestID, ChangedAt: now})
	}
	if restored && toPool != "" && toPool != to.Pool {
		pools = append(pools, events.PoolChangedData{OneID: to.OneID, From: toPool, To: to.Pool, Reason: "split", SourceID: out.RequestID, ChangedAt: now})
	}
	return pools
}

// splitRequestID names a split by what it moves, so asking twice announces one event.
func splitRequestID(oneID string, leaving []member.StoredIdentity) string {
	keys := uniqueKeys(leaving)
	slices.Sort(keys)
	sum := sha256.Sum256([]byte(oneID + "\x00" + strings.Join(keys, ",")))
	return "split-" + hex.EncodeToString(sum[:12])
}
