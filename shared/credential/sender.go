package credential

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/omnimember/omnimember/events"
)

// Variables holding the sender tokens (the file wins when both are set: a mounted Kubernetes
// secret is the production path).
const (
	SendersEnv     = "OMNIMEMBER_SENDER_TOKENS"
	SendersFileEnv = "OMNIMEMBER_SENDER_TOKENS_FILE"
)

// Sender is one credential of a system that posts CloudEvents: a platform connector, a store
// system, the app's backend, or, with Internal, the dispatcher pushing the chain's own events to a
// function's receiver (OMNIMEMBER_TRIGGER=http).
type Sender struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	// Sources are the CloudEvents sources it may send: exact (`jd/jd-shop-9`) or a prefix ending
	// in `*` (`tmall/*`; `*` alone is every channel source).
	Sources []string `json:"sources"`
	// Internal lets it send the chain's own events too: types no channel sends
	// (identity.resolved, points.awarded, ...) and sources under omnimember/.
	Internal bool `json:"internal,omitempty"`
}

// Senders is the validated set of sender credentials. The zero value and nil hold none: every
// request is refused.
type Senders struct {
	list   []Sender
	tokens tokenSet
}

// HistoryPrefix starts the sources of history (the backfill tool's events): a live sender's `*`
// does not cover them, only a pattern naming the prefix itself, so an old paidAt cannot pass as
// history from a channel's connector.
const HistoryPrefix = "backfill/"

// DevSender is make run's development sender: every source, internal events included; not
// history, which the backfill tool publishes with its own credential.
func DevSender(token string) Sender {
	return Sender{Name: "development", Token: token, Sources: []string{"*"}, Internal: true}
}

// MaySendHistory says whether a pattern of the sender names the history prefix explicitly.
func (s *Sender) MaySendHistory() bool {
	for _, p := range s.Sources {
		if strings.HasPrefix(p, HistoryPrefix) {
			return true
		}
	}
	return false
}

// NewSenders validates the credentials: names and tokens unique, tokens long enough, at least one
// source pattern each, `*` only at a pattern's end.
func NewSenders(list ...Sender) (*Senders, error) {
	var errs []error
	names, tokens := map[string]bool{}, map[string]bool{}
	for _, s := range list {
		errs = append(errs, checkIdentity("sender", s.Name, s.Token, names, tokens)...)
		if len(s.Sources) == 0 {
			errs = append(errs, fmt.Errorf("sender %q: no sources; list the sources it may send (`*` for all)", s.Name))
		}
		for _, p := range s.Sources {
			if p == "" || strings.ContainsAny(p, " \t") || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
				errs = append(errs, fmt.Errorf("sender %q: source pattern %q: want an exact source or a prefix ending in *", s.Name, p))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := &Senders{list: append([]Sender(nil), list...)}
	toks := make([]string, len(list))
	for i, s := range list {
		toks[i] = s.Token
	}
	out.tokens = newTokenSet(toks)
	return out, nil
}

// ParseSenders reads a JSON array of senders:
// `[{"name":"jd-shop-9","token":"…","sources":["jd/jd-shop-9"]}]`.
func ParseSenders(raw []byte) (*Senders, error) {
	list, err := decodeList[Sender](raw, "sender tokens")
	if err != nil {
		return nil, err
	}
	return NewSenders(list...)
}

// SendersFromEnv reads OMNIMEMBER_SENDER_TOKENS_FILE or OMNIMEMBER_SENDER_TOKENS; neither set
// gives an empty set (receivers closed).
func SendersFromEnv(getenv func(string) string) (*Senders, error) {
	raw, from, err := fromEnv(getenv, SendersEnv, SendersFileEnv)
	if err != nil || raw == nil {
		return &Senders{}, err
	}
	s, err := ParseSenders(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return s, nil
}

// With returns the set plus more credentials (make run adds its development sender).
func (s *Senders) With(more ...Sender) (*Senders, error) {
	return NewSenders(append(s.List(), more...)...)
}

// List returns the credentials.
func (s *Senders) List() []Sender {
	if s == nil {
		return nil
	}
	return append([]Sender(nil), s.list...)
}

// Len is how many credentials the set holds.
func (s *Senders) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// Authenticate finds the sender of an Authorization header.
func (s *Senders) Authenticate(header string) (*Sender, error) {
	var tokens tokenSet
	if s != nil {
		tokens = s.tokens
	}
	i, err := tokens.authenticate(header)
	if err != nil {
		return nil, err
	}
	return &s.list[i], nil
}

// Check says whether the sender may send an event of this type from this source; a refusal names
// the attribute at fault (`type` or `source`) and why.
func (s *Sender) Check(eventType, source string) (field string, err error) {
	if events.Internal(eventType, source) && !s.Internal {
		if strings.HasPrefix(source, events.SourcePrefix) {
			return "source", fmt.Errorf("sender %q may not send events of the chain's own source %q", s.Name, source)
		}
		return "type", fmt.Errorf("sender %q may not send %s: only the chain produces it", s.Name, eventType)
	}
	for _, p := range s.Sources {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(source, prefix) || p == source {
			return "", nil
		}
	}
	return "source", fmt.Errorf("sender %q may not send source %q (allowed: %s)", s.Name, source, strings.Join(s.Sources, ", "))
}

// LogValue shows names and scopes, never a token.
func (s *Senders) LogValue() slog.Value {
	if s.Len() == 0 {
		return slog.StringValue("none (closed)")
	}
	attrs := make([]slog.Attr, 0, s.Len())
	for _, c := range s.List() {
		scope := strings.Join(c.Sources, ",")
		if c.Internal {
			scope += " +internal"
		}
		attrs = append(attrs, slog.String(c.Name, scope+" token=***"))
	}
	return slog.GroupValue(attrs...)
}
