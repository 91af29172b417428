package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
)

// Variables of ingest's admission.
const (
	EnvEventMaxAge     = "OMNIMEMBER_EVENT_MAX_AGE"
	EnvEventMaxSkew    = "OMNIMEMBER_EVENT_MAX_SKEW"
	EnvConflictWindow  = "OMNIMEMBER_CONFLICT_WINDOW"
	defaultConflictTTL = stream.MinDuplicateWindow
)

// Edge is what ingest checks before it answers: the live time window, the merge rules match uses
// (IDENTITY_RULES_FILE: the blocklist, which types resolve a member) and how long the same-id
// check remembers an accepted event (ConflictWindow, at least the stream's duplicate window).
type Edge struct {
	Window         admit.Window
	Rules          *identity.Rules
	ConflictWindow time.Duration
	Now            func() time.Time
	// HistorySender says whether the request's sender may post history: events whose source starts
	// with BackfillSourcePrefix, admitted under admit.History instead of the live window. nil
	// refuses them; the default asks the request's sender credential, which must name the backfill
	// sources explicitly (a channel connector's `*` does not cover them).
	HistorySender func(ctx context.Context) bool
}

// DefaultEdge is the edge of `make run` and the tests: the default window and rules.
func DefaultEdge() Edge {
	return Edge{Window: admit.Live(admit.DefaultMaxAge, admit.DefaultMaxSkew), Rules: identity.DefaultRules(),
		ConflictWindow: defaultConflictTTL, Now: time.Now, HistorySender: credentialSendsHistory}
}

func credentialSendsHistory(ctx context.Context) bool {
	s := runtime.SenderOf(ctx)
	return s != nil && s.MaySendHistory()
}

// EdgeFromEnv reads OMNIMEMBER_EVENT_MAX_AGE, OMNIMEMBER_EVENT_MAX_SKEW, OMNIMEMBER_CONFLICT_WINDOW
// and IDENTITY_RULES_FILE over DefaultEdge; duplicateWindow is the stream's, the least the same-id
// check may remember.
func EdgeFromEnv(getenv func(string) string, duplicateWindow time.Duration) (Edge, error) {
	e := DefaultEdge()
	e.ConflictWindow = duplicateWindow
	for _, v := range []struct {
		name string
		dst  *time.Duration
	}{{EnvEventMaxAge, &e.Window.MaxAge}, {EnvEventMaxSkew, &e.Window.MaxSkew}, {EnvConflictWindow, &e.ConflictWindow}} {
		if s := getenv(v.name); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return e, fmt.Errorf("%s: %w", v.name, err)
			}
			*v.dst = d
		}
	}
	if err := e.Window.Validate(); err != nil {
		return e, fmt.Errorf("%s/%s: %w", EnvEventMaxAge, EnvEventMaxSkew, err)
	}
	if e.ConflictWindow < duplicateWindow {
		return e, fmt.Errorf("%s %s: want at least the duplicate window (%s)", EnvConflictWindow, e.ConflictWindow, duplicateWindow)
	}
	rules, err := identity.RulesFromEnv()
	if err != nil {
		return e, err
	}
	e.Rules = rules
	return e, nil
}

// policy is the admission policy of live events.
func (e Edge) policy() admit.Policy {
	return admit.Policy{Rules: e.Rules, Window: e.Window, Now: e.now}
}

func (e Edge) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// LogValue is the start line's view of the edge.
func (e Edge) LogValue() slog.Value {
	rules := "default"
	if e.Rules != nil {
		rules = e.Rules.Version
	}
	return slog.GroupValue(slog.Duration("eventMaxAge", e.Window.MaxAge), slog.Duration("eventMaxSkew", e.Window.MaxSkew),
		slog.Duration("conflictWindow", e.ConflictWindow), slog.String("identityRules", rules))
}
