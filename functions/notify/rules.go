package notify

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

//go:embed contact.json
var defaultRules []byte

// DefaultRules are contact.json as shipped: MISSION §5's defaults.
func DefaultRules() contact.Rules { return builtinRules() }

var builtinRules = sync.OnceValue(func() contact.Rules {
	r, err := contact.Parse(defaultRules)
	if err != nil {
		panic(fmt.Sprintf("built-in contact.json: %v", err))
	}
	return r
})

// rules are the handler's rules of contact; a handler built without any applies the defaults.
func (h *Handler) rules() contact.Rules {
	if h.Rules.Location() == nil {
		return builtinRules()
	}
	return h.Rules
}

// admit applies the rules of contact inside the transaction that records the notification, so the
// marketing cap is counted in the same commit as the send it allows: two concurrent sends to one
// member cannot both pass. It reports whether the notification may go now; otherwise rec is
// suppressed (with the reason) or deferred (queued for the end of quiet hours).
func (h *Handler) admit(tx store.Tx, rec *record, queued bool) (bool, error) {
	if rec.Status == "deferred" && !queued {
		return false, nil // the deferred queue sends it when quiet hours end
	}
	if rec.Category == contact.Sync {
		return true, nil // a platform sync is not a message to the member: no reads needed
	}
	st, view, err := contactState(tx, rec.OneID)
	if err != nil {
		return false, err
	}
	d := h.rules().Decide(view, contact.Message{ID: rec.ID, Category: rec.Category, Channel: rec.Channel}, h.Now())
	switch d.Verdict {
	case contact.Suppress:
		rec.Status, rec.Reason = "suppressed", d.Reason
		return false, tx.Delete(Deferred, rec.ID)
	case contact.Defer:
		until := d.Until
		rec.Status, rec.NotBefore = "deferred", &until
		return false, tx.Set(Deferred, rec.ID, deferred{Notification: rec.Notification, Due: member.IndexTime(until)})
	}
	if d.Day == "" {
		return true, nil
	}
	st.OneID = rec.OneID
	st.Count(d.Day, rec.ID)
	st.Updated = h.Now()
	return true, tx.Set(contact.Collection, rec.OneID, st)
}

// contactState reads a member's contact document and the view the rules decide on: merged with
// the documents of the OneIDs match merged with it, so a choice made under any of them holds.
func contactState(tx store.Tx, oneID string) (own, view contact.State, err error) {
	if err := tx.Get(contact.Collection, oneID, &own); err != nil && !errors.Is(err, store.ErrNotFound) {
		return own, view, fmt.Errorf("read contact state of %s: %w", oneID, err)
	}
	var m member.Member
	if err := tx.Get(member.Members, oneID, &m); err != nil && !errors.Is(err, store.ErrNotFound) {
		return own, view, fmt.Errorf("read member %s: %w", oneID, err)
	}
	related := m.MergedFrom
	if m.MergedInto != "" {
		related = append(slices.Clone(related), m.MergedInto)
	}
	if len(related) == 0 {
		return own, own, nil
	}
	docs, err := tx.GetAll(contact.Collection, related)
	if err != nil {
		return own, view, fmt.Errorf("read contact states merged with %s: %w", oneID, err)
	}
	var others []contact.State
	for _, d := range docs {
		var s contact.State
		if d.Exists && d.DataTo(&s) == nil {
			others = append(others, s)
		}
	}
	return own, contact.Merged(own, others...), nil
}

// uncount gives back the cap a notification took when nothing reached the member.
func (h *Handler) uncount(tx store.Tx, rec *record) error {
	if rec.Category != contact.Marketing {
		return nil
	}
	var st contact.State
	if err := tx.Get(contact.Collection, rec.OneID, &st); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	for day, ids := range st.Marketing {
		st.Marketing[day] = slices.DeleteFunc(ids, func(id string) bool { return id == rec.ID })
	}
	return tx.Set(contact.Collection, rec.OneID, st)
}

// ConsentRequest is the body of PUT /v1/members/{oneId}/consent: consent on one channel (granted
// or withdrawn) and/or lifting or setting the marketing opt-out.
type ConsentRequest struct {
	Channel  string `json:"channel"`
	Consent  string `json:"consent,omitempty"`
	OptedOut *bool  `json:"optedOut,omitempty"`
}

// putConsent records a member's consent (from a channel system or an agent), audited with the
// operator's name in the contact document's history.
func (h *Handler) putConsent(w http.ResponseWriter, r *http.Request) {
	oneID := r.PathValue("oneId")
	if store.CheckNames(contact.Collection, oneID) != nil || !strings.HasPrefix(oneID, "om_") {
		runtime.WriteError(w, http.StatusBadRequest, "oneId", "%q is not a OneID", oneID)
		return
	}
	var req ConsentRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		status := http.StatusBadRequest
		if errors.As(err, new(*http.MaxBytesError)) {
			status = http.StatusRequestEntityTooLarge
		}
		runtime.WriteError(w, status, "body", "want {channel, consent, optedOut}: %v", err)
		return
	}
	if field, msg := req.invalid(); field != "" {
		runtime.WriteError(w, http.StatusBadRequest, field, "%s", msg)
		return
	}
	st, err := h.setContact(r.Context(), oneID, req, runtime.Operator(r), "api")
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "consent not stored, retry: %v", err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, st)
}

func (c ConsentRequest) invalid() (field, msg string) {
	switch {
	case c.Channel == "" || len(c.Channel) > 32 || strings.TrimSpace(c.Channel) != c.Channel:
		return "channel", "want a channel name such as sms"
	case c.Consent != "" && c.Consent != contact.ConsentGranted && c.Consent != contact.ConsentWithdrawn:
		return "consent", "want granted or withdrawn"
	case c.Consent == "" && c.OptedOut == nil:
		return "consent", "give consent, optedOut or both"
	}
	return "", ""
}
