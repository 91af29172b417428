package stack

import (
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// anonymousAllowed are the only routes an anonymous request may reach, each with what guards it
// instead. Every other route of the all-in-one stack must answer 401.
var anonymousAllowed = map[string]string{
	"GET /healthz":                           "liveness, no data",
	"GET /readyz":                            "readiness, no data",
	"GET /metrics":                           "Prometheus counters, no member data",
	"GET /console/":                          "the marketer console's static files (its API calls carry the marketer token)",
	"GET /{$}":                               "a redirect to the console",
	"POST /webhooks/{platform}":              "native webhooks: each platform's signature",
	"GET /webhooks/{platform}":               "native webhooks: each platform's signed URL check",
	"POST /webhooks/{platform}/{rest...}":    "native webhooks: each platform's signature",
	"GET /webhooks/{platform}/{rest...}":     "native webhooks: each platform's signed URL check",
	"POST /webhooks/sms/{provider}/replies":  "SMS provider callbacks: the callback token in their URL",
	"POST /webhooks/sms/{provider}/receipts": "SMS provider callbacks: the callback token in their URL",
	"POST " + profile.TmallMemberPath:        "Tmall 会员通 SPI: TOP's signature",
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// requestFor turns a route pattern into a request: the method it names (a receiver without one
// takes POST), each wildcard filled with a plausible value.
func requestFor(t *testing.T, base, pattern string) *http.Request {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodPost, pattern
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = wildcard.ReplaceAllStringFunc(path, func(w string) string {
		if w == "{oneId}" || w == "{target}" {
			return "om_aaaaaaaaaaaaaaaaaaaa"
		}
		return "x"
	})
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader(`{}`)
	}
	req, err := http.NewRequest(method, base+path, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestEveryRouteRefusesAnonymousRequests walks every route the all-in-one stack serves (as make
// run configures it: every token set, webhook secrets, the 会员通 SPI) and asserts an anonymous
// request gets 401 with WWW-Authenticate, except the routes listed in anonymousAllowed.
func TestEveryRouteRefusesAnonymousRequests(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.AdminToken, opts.APIToken, opts.MarketerToken = "ops-token-0123456789", "api-token-0123456789", "marketer-token-0123456789"
	opts.WebhookSecrets = ingest.Secrets{"pos": {"store-1": {"secret": "pos-secret-0123456789"}}}
	opts.TmallMember = &profile.TmallMember{AppKey: tmcAppKey, Secret: tmcSecret, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	s := start(t, opts)
	routes := s.Runtime.Routes()
	require.Greater(t, len(routes), 20, "got %d routes, want every function's", len(routes))
	for allowed := range anonymousAllowed {
		assert.Contains(t, routes, allowed, "an allowed route that is no longer served: drop it from the list")
	}
	for _, pattern := range routes {
		if _, ok := anonymousAllowed[pattern]; ok {
			continue
		}
		t.Run(pattern, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(requestFor(t, "http://"+s.Addr, pattern))
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "got status, want 401 for an anonymous request (%s)", body)
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer", "a 401 says which scheme")
		})
	}
}
