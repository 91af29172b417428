package notify

import (
	"net/http"

	"github.com/omnimember/omnimember/shared/runtime"
)

// Inbound configures the SMS providers' callbacks (replies and delivery receipts).
type Inbound struct{}

// routes adds the consent API and the SMS callbacks.
func (h *Handler) routes(mux *http.ServeMux, _ *runtime.Publisher) {
	mux.Handle("PUT /v1/members/{oneId}/consent", runtime.RequireBearer(h.APIToken, http.HandlerFunc(h.putConsent)))
}
