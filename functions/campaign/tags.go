package campaign

import (
	"context"
	"fmt"
	"net/http"
	"regexp"

	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
)

var oneIDPattern = regexp.MustCompile(`^om_[0-9a-z]{10,40}$`)

// tagRoutes let marketers label members for segments: PUT and DELETE
// /v1/members/{oneId}/tags/{tag} (the campaign function is the tags' only writer; audited).
func (h *Handler) tagRoutes(mux runtime.Mux, auth func(http.HandlerFunc) http.Handler) {
	mux.Handle("PUT /v1/members/{oneId}/tags/{tag}", auth(func(w http.ResponseWriter, r *http.Request) {
		h.setTag(w, r, true)
	}))
	mux.Handle("DELETE /v1/members/{oneId}/tags/{tag}", auth(func(w http.ResponseWriter, r *http.Request) {
		h.setTag(w, r, false)
	}))
}

func (h *Handler) setTag(w http.ResponseWriter, r *http.Request, on bool) {
	oneID, tag := r.PathValue("oneId"), r.PathValue("tag")
	if !oneIDPattern.MatchString(oneID) {
		writeErr(w, bad("oneId", "%q is not a OneID", oneID))
		return
	}
	if err := (segment.Rule{Tags: []string{tag}}).Validate(); err != nil {
		writeErr(w, bad("tag", "%q: want lower-case letters, digits, - or _ (at most 40)", tag))
		return
	}
	if err := h.Tag(r.Context(), oneID, tag, on, runtime.Operator(r)); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Tag puts a tag on a member or takes it off, with its audit record.
func (h *Handler) Tag(ctx context.Context, oneID, tag string, on bool, by string) error {
	now := h.Now().UTC()
	action := "tag " + tag
	if !on {
		action = "untag " + tag
	}
	return h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		var err error
		if on {
			err = tx.Set(member.Tags, member.TagKey(tag, oneID), member.Tag{Tag: tag, OneID: oneID, At: now})
		} else {
			err = tx.Delete(member.Tags, member.TagKey(tag, oneID))
		}
		if err != nil {
			return fmt.Errorf("%s on %s: %w", action, oneID, err)
		}
		return writeAudit(tx, audit{At: now, By: by, Action: action, CampaignID: "", Detail: oneID})
	})
}
