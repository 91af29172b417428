package identity

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/omnimember/omnimember/events"
)

// Strengths of an identity type.
const (
	// Strong ids link and merge members (a phone, a union id).
	Strong = "strong"
	// Scoped ids (one shop's or app's id) find their member but only merge through the
	// platform-level id named by LinksVia.
	Scoped = "scoped"
	// Weak ids (a cookie, a masked phone) only attach to a member an event's strong or scoped id found.
	Weak = "weak"
)

// TypeRule says how one identity type links members.
type TypeRule struct {
	Strength     string `json:"strength"`
	Priority     int    `json:"priority"`
	MaxPerMember int    `json:"maxPerMember"`
	LinksVia     string `json:"linksVia,omitempty"`
}

// Blocked is an identity value that must never link anyone (a shop's placeholder phone).
type Blocked struct {
	Type   string `json:"type"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// Rules are a brand's merge rules, read from a validated data file.
type Rules struct {
	Version string `json:"version"`
	// FanIn is the most members one event may join; beyond it the event waits in quarantine.
	FanIn int `json:"fanIn"`
	// MaxMergesPerIdentity is how many merges one identity value may cause before further merges
	// through it wait in quarantine (a shared value that keeps pulling people together).
	MaxMergesPerIdentity int                 `json:"maxMergesPerIdentity"`
	Types                map[string]TypeRule `json:"types"`
	Blocklist            []Blocked           `json:"blocklist"`
	blocked              map[string]string   // canonical identity → reason
}

//go:embed rules.json
var defaultRules []byte

// DefaultRules are the built-in rules (MISSION §5 and issue 4's defaults).
func DefaultRules() *Rules {
	r, err := ParseRules(defaultRules)
	if err != nil {
		panic("built-in identity rules: " + err.Error())
	}
	return r
}

// RulesEnv names the variable holding a rules file.
const RulesEnv = "IDENTITY_RULES_FILE"

// RulesFromEnv reads IDENTITY_RULES_FILE, or returns the defaults.
func RulesFromEnv() (*Rules, error) {
	path := os.Getenv(RulesEnv)
	if path == "" {
		return DefaultRules(), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RulesEnv, err)
	}
	r, err := ParseRules(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", RulesEnv, path, err)
	}
	return r, nil
}

// ParseRules decodes and validates a rules file; errors name the line, column or field.
func ParseRules(raw []byte) (*Rules, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r Rules
	if err := dec.Decode(&r); err != nil {
		return nil, jsonError(raw, err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// jsonError adds the line and column to a decoding error.
func jsonError(raw []byte, err error) error {
	var offset int64 = -1
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		offset = syntax.Offset
	case errors.As(err, &typeErr):
		offset = typeErr.Offset
	}
	if offset < 0 {
		return fmt.Errorf("rules: %w", err)
	}
	line := 1 + bytes.Count(raw[:min(int(offset), len(raw))], []byte("\n"))
	col := int(offset) - bytes.LastIndexByte(raw[:min(int(offset), len(raw))], '\n') - 1
	return fmt.Errorf("rules: line %d, column %d: %w", line, col, err)
}

func (r *Rules) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("rules: "+format, args...)) }
	if r.Version == "" {
		bad("version: required")
	}
	if r.FanIn < 2 {
		bad("fanIn %d: want at least 2 (an event joins at least two members to merge)", r.FanIn)
	}
	if r.MaxMergesPerIdentity < 1 {
		bad("maxMergesPerIdentity %d: want at least 1", r.MaxMergesPerIdentity)
	}
	for _, must := range []string{Phone, PhoneSHA256Type} {
		if r.Types[must].Strength != Strong {
			bad("types.%s: must be strong (the phone is the core key)", must)
		}
	}
	priorities := map[int]string{}
	for name, t := range r.Types {
		if !slices.Contains([]string{Strong, Scoped, Weak}, t.Strength) {
			bad("types.%s.strength %q: want strong, scoped or weak", name, t.Strength)
		}
		if t.MaxPerMember < 1 {
			bad("types.%s.maxPerMember %d: want at least 1", name, t.MaxPerMember)
		}
		if other, dup := priorities[t.Priority]; dup {
			bad("types.%s.priority %d: also used by %s", name, t.Priority, other)
		}
		priorities[t.Priority] = name
		if t.Strength == Scoped && r.Types[t.LinksVia].Strength != Strong {
			bad("types.%s.linksVia %q: a scoped type links through a strong type", name, t.LinksVia)
		}
		if t.Strength != Scoped && t.LinksVia != "" {
			bad("types.%s.linksVia: only scoped types link via another", name)
		}
	}
	r.blocked = map[string]string{}
	for i, b := range r.Blocklist {
		norm, err := Normalize(events.Identity{Type: b.Type, Value: b.Value, Scope: "blocklist"})
		if err != nil {
			bad("blocklist[%d]: %v", i, err)
			continue
		}
		for _, n := range norm { // a blocked phone blocks its hashes too
			r.blocked[canonical(n)] = b.Reason
		}
	}
	return errors.Join(errs...)
}

// Rule returns the rule of an identity type; a type the file does not name is weak, so an id
// nobody vetted never merges members.
func (r *Rules) Rule(idType string) TypeRule {
	if t, ok := r.Types[idType]; ok {
		return t
	}
	return TypeRule{Strength: Weak, Priority: 1 << 20, MaxPerMember: 50}
}

// Blocked reports whether a normalised identity is on the blocklist, and why.
func (r *Rules) Blocked(id events.Identity) (string, bool) {
	reason, ok := r.blocked[canonical(id)]
	return reason, ok
}

// Describe lists the types by strength, for the start log line.
func (r *Rules) Describe() string {
	by := map[string][]string{}
	for name, t := range r.Types {
		by[t.Strength] = append(by[t.Strength], name)
	}
	var parts []string
	for _, s := range []string{Strong, Scoped, Weak} {
		slices.Sort(by[s])
		parts = append(parts, fmt.Sprintf("%s=%d", s, len(by[s])))
	}
	return fmt.Sprintf("version %s, %s, fanIn %d, blocklist %d", r.Version, strings.Join(parts, " "), r.FanIn, len(r.Blocklist))
}
