package match

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// sealPurpose binds a quarantined event's ciphertext to its use.
const sealPurpose = "quarantined-event"

// releaseExtension marks an event an operator released from quarantine: it names the quarantine record.
const releaseExtension = "omquarantine"

// quarantine holds the event for review instead of merging.
func (h *Handler) quarantine(tx store.Tx, ev cloudevents.Event, p Plan, now time.Time) error {
	raw, err := ev.MarshalJSON()
	if err != nil {
		return err
	}
	sealed, err := h.Keys.Seal(string(raw), sealPurpose)
	if err != nil {
		return err
	}
	q := member.Quarantined{ID: receipt.Key(Name, ev), Sealed: sealed, EventType: ev.Type(), EventID: ev.ID(),
		Reason: p.Quarantine, OneIDs: p.Survivor.MergedFrom, Status: member.QuarantinePending, At: now}
	return tx.Set(member.Quarantine, q.ID, q)
}

// released reports whether ev is a copy an operator released from quarantine.
func (h *Handler) released(tx store.Tx, ev cloudevents.Event) (bool, error) {
	id, ok := ev.Extensions()[releaseExtension].(string)
	if !ok || id == "" {
		return false, nil
	}
	var q member.Quarantined
	if err := tx.Get(member.Quarantine, id, &q); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return q.Status == member.QuarantineReleased, nil
}

// Routes registers the operator endpoints, each behind the admin bearer token.
func (h *Handler) Routes(mux runtime.Mux, pub *runtime.Publisher) {
	admin := func(pattern string, fn http.HandlerFunc) {
		mux.Handle(pattern, runtime.RequireBearer(h.AdminToken, fn))
	}
	admin("GET /v1/quarantine", h.listQuarantine)
	admin("POST /v1/quarantine/{id}/release", func(w http.ResponseWriter, r *http.Request) { h.decideQuarantine(w, r, pub, true) })
	admin("POST /v1/quarantine/{id}/reject", func(w http.ResponseWriter, r *http.Request) { h.decideQuarantine(w, r, pub, false) })
	admin("POST /v1/members:merge-preview", h.mergePreview)
	mux.Handle("POST /v1/admin/pii:reseal", runtime.RequireBearer(h.AdminToken, runtime.LongRunning(http.HandlerFunc(h.reseal))))
	mux.Handle("POST /v1/admin/identities:rekey", runtime.RequireBearer(h.AdminToken, runtime.LongRunning(http.HandlerFunc(h.rekey))))
	admin("POST /v1/members/{target}", func(w http.ResponseWriter, r *http.Request) { h.memberAction(w, r, pub) })
	admin("DELETE /v1/members/{oneId}/personal-data", func(w http.ResponseWriter, r *http.Request) { h.erasePersonalData(w, r, pub) })
}

func (h *Handler) listQuarantine(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	if status == "" {
		status = member.QuarantinePending
	}
	if !slices.Contains([]string{member.QuarantinePending, member.QuarantineReleased, member.QuarantineRejected}, status) {
		runtime.WriteError(w, http.StatusBadRequest, "status", "status %q: want pending, released or rejected", status)
		return
	}
	docs, err := h.Store.Query(r.Context(), store.Query{Collection: member.Quarantine,
		Filters: []store.Filter{{Field: "status", Op: store.OpEq, Value: status}}})
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "list quarantine: %v", err)
		return
	}
	out := make([]member.Quarantined, len(docs))
	for i, d := range docs {
		if err := d.DataTo(&out[i]); err != nil {
			runtime.WriteError(w, http.StatusInternalServerError, "", "%v", err)
			return
		}
	}
	runtime.WriteJSON(w, http.StatusOK, map[string]any{"items": out})
}

// decideQuarantine releases (the event goes round again with the fan-in guard lifted) or
// rejects a held event, once; the decision is audited.
func (h *Handler) decideQuarantine(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher, release bool) {
	id, who, now := r.PathValue("id"), runtime.Operator(r), h.Now()
	var q member.Quarantined
	err := h.Store.RunTransaction(r.Context(), func(_ context.Context, tx store.Tx) error {
		if err := tx.Get(member.Quarantine, id, &q); err != nil {
			return err
		}
		want := member.QuarantineRejected
		if release {
			want = member.QuarantineReleased
		}
		switch q.Status {
		case want:
			return nil // asked again (a release whose re-send failed, say): do it again, record once
		case member.QuarantinePending:
		default:
			return fmt.Errorf("%w: already %s", errDecided, q.Status)
		}
		q.Status, q.DecidedAt, q.DecidedBy = want, &now, who
		if err := tx.Set(member.Quarantine, id, q); err != nil {
			return err
		}
		return audit(tx, "quarantine."+q.Status, who, id, now)
	})
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidName):
		runtime.WriteError(w, http.StatusNotFound, "", "no quarantined event %s", id)
		return
	case errors.Is(err, errDecided):
		runtime.WriteError(w, http.StatusConflict, "", "%v", err)
		return
	case err != nil:
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "%v", err)
		return
	}
	if release {
		if err := h.republish(r.Context(), pub, q); err != nil {
			runtime.WriteError(w, http.StatusServiceUnavailable, "", "released, but not yet re-sent (retry the release): %v", err)
			return
		}
	}
	runtime.WriteJSON(w, http.StatusOK, q)
}

var errDecided = errors.New("quarantine decided")

// republish sends the held event again under a derived id, marked as released.
func (h *Handler) republish(ctx context.Context, pub *runtime.Publisher, q member.Quarantined) error {
	raw, err := h.Keys.Open(q.Sealed, sealPurpose)
	if err != nil {
		return err
	}
	ev := cloudevents.NewEvent()
	if err := ev.UnmarshalJSON([]byte(raw)); err != nil {
		return err
	}
	ev.SetID(ev.ID() + "~released")
	ev.SetExtension(releaseExtension, q.ID)
	return pub.Publish(ctx, nil, []cloudevents.Event{ev})
}

// auditEntry is one operator action.
type auditEntry struct {
	Action string    `json:"action"`
	By     string    `json:"by"`
	Target string    `json:"target"`
	At     time.Time `json:"at"`
}

func audit(tx store.Tx, action, by, target string, at time.Time) error {
	id := fmt.Sprintf("%d-%s", at.UnixNano(), receiptSafe(target))
	return tx.Set(member.Audit, id, auditEntry{Action: action, By: by, Target: target, At: at})
}

// receiptSafe keeps a target usable inside a document id.
func receiptSafe(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(out) < 64; i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' {
			out = append(out, c)
		}
	}
	return string(out)
}
