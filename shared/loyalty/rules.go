// Package loyalty holds a brand's points and tier rules as validated data, and the arithmetic they
// decide: what an order earns, when points expire, when a level is reached or lost.
package loyalty

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // rules name zones (Asia/Shanghai); images carry no zoneinfo

	"gopkg.in/yaml.v3"
)

// Rules are a brand's loyalty rules.
type Rules struct {
	Version    string     `yaml:"version"`
	Timezone   string     `yaml:"timezone"`
	Earning    Earning    `yaml:"earning"`
	Expiry     Expiry     `yaml:"expiry"`
	Redemption Redemption `yaml:"redemption"`
	Refunds    Refunds    `yaml:"refunds"`
	Tiers      Tiers      `yaml:"tiers"`
	location   *time.Location
}

// Earning says how many points an order earns.
type Earning struct {
	FenPerPoint int64                  `yaml:"fenPerPoint"`
	Channels    map[string]ChannelRate `yaml:"channels"`
	Categories  map[string]float64     `yaml:"categories"`
	Tiers       map[string]float64     `yaml:"tiers"`
	Campaigns   []Campaign             `yaml:"campaigns"`
	Caps        Caps                   `yaml:"caps"`
}

// ChannelRate overrides the base rate of one channel and/or multiplies it.
type ChannelRate struct {
	FenPerPoint int64   `yaml:"fenPerPoint"`
	Multiplier  float64 `yaml:"multiplier"`
}

// Campaign is a multiplier window: orders paid within [Start, End) on its channels by members of
// its segment earn Multiplier times.
type Campaign struct {
	Name       string    `yaml:"name"`
	Start      time.Time `yaml:"start"`
	End        time.Time `yaml:"end"`
	Channels   []string  `yaml:"channels"`
	Segment    string    `yaml:"segment"`
	Multiplier float64   `yaml:"multiplier"`
}

// Caps bound what one order and one member-day earn (0: no cap).
type Caps struct {
	PerOrder int64 `yaml:"perOrder"`
	PerDay   int64 `yaml:"perDay"`
}

// Expiry says when lots expire and when members hear about it.
type Expiry struct {
	Months       int `yaml:"months"`
	ReminderDays int `yaml:"reminderDays"`
}

// Redemption bounds redemptions.
type Redemption struct {
	MinPoints int64 `yaml:"minPoints"`
}

// Refund policies for points already spent when their order is refunded.
const (
	RefundNegative = "negative" // the balance goes below zero
	RefundClawback = "clawback" // the next earnings repay the difference first
)

// Refunds says what happens to points a refund takes back after they were spent.
type Refunds struct {
	AfterRedemption string `yaml:"afterRedemption"`
}

// maxGrowthPerYuan bounds the growth rate, so that the largest purchase (events.MaxFen) earns
// at most 10^12 growth and a score stays a checked sum of bounded values.
const maxGrowthPerYuan = 10_000

// Tier bases.
const (
	BasisSpend  = "spend"
	BasisGrowth = "growth"
)

// Tiers is the ladder and when members move on it.
type Tiers struct {
	Basis         string  `yaml:"basis"`
	GrowthPerYuan float64 `yaml:"growthPerYuan"`
	WindowDays    int     `yaml:"windowDays"`
	GraceDays     int     `yaml:"graceDays"`
	MinStayDays   int     `yaml:"minStayDays"`
	EvaluationDay int     `yaml:"evaluationDay"`
	Levels        []Level `yaml:"levels"`
}

//go:embed loyalty.yaml
var exampleRules []byte

//go:embed defaults.yaml
var defaultRules []byte

// Defaults are MISSION §5's plain rules: 1 yuan = 1 point everywhere, no multipliers or caps.
func Defaults() *Rules {
	r, err := Parse(defaultRules)
	if err != nil {
		panic("built-in defaults.yaml: " + err.Error())
	}
	return r
}

// Example is the shipped example rules (what `make run` uses).
func Example() *Rules {
	r, err := Parse(exampleRules)
	if err != nil {
		panic("built-in loyalty.yaml: " + err.Error())
	}
	return r
}

// RulesEnv names the variable holding a rules file.
const RulesEnv = "LOYALTY_RULES_FILE"

// FromEnv reads LOYALTY_RULES_FILE, or returns MISSION's defaults.
func FromEnv() (*Rules, error) {
	path := os.Getenv(RulesEnv)
	if path == "" {
		return Defaults(), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RulesEnv, err)
	}
	r, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", RulesEnv, path, err)
	}
	return r, nil
}

// Parse decodes and validates rules. Errors name the line and the field.
func Parse(raw []byte) (*Rules, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("loyalty rules: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var r Rules
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("loyalty rules: %w", err)
	}
	var errs []error
	for _, p := range r.problems() {
		errs = append(errs, fmt.Errorf("loyalty rules: line %d: %s: %s", lineOf(&root, p.field), p.field, p.msg))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.location, _ = time.LoadLocation(r.Timezone)
	return &r, nil
}

type problem struct{ field, msg string }

// problems checks every rule and names each bad field by its path.
func (r *Rules) problems() []problem {
	var out []problem
	bad := func(field, format string, args ...any) {
		out = append(out, problem{field, fmt.Sprintf(format, args...)})
	}
	if r.Version == "" {
		bad("version", "required")
	}
	if _, err := time.LoadLocation(r.Timezone); err != nil || r.Timezone == "" {
		bad("timezone", "want an IANA zone such as Asia/Shanghai")
	}
	r.checkEarning(bad)
	if r.Expiry.Months < 1 || r.Expiry.Months > 120 {
		bad("expiry.months", "%d: want 1..120", r.Expiry.Months)
	}
	if r.Expiry.ReminderDays < 0 || r.Expiry.ReminderDays > 365 {
		bad("expiry.reminderDays", "%d: want 0..365", r.Expiry.ReminderDays)
	}
	if r.Redemption.MinPoints < 1 {
		bad("redemption.minPoints", "%d: want at least 1", r.Redemption.MinPoints)
	}
	if !slices.Contains([]string{RefundNegative, RefundClawback}, r.Refunds.AfterRedemption) {
		bad("refunds.afterRedemption", "%q: want %s or %s", r.Refunds.AfterRedemption, RefundNegative, RefundClawback)
	}
	r.checkTiers(bad)
	return out
}

func (r *Rules) checkEarning(bad func(string, string, ...any)) {
	e := r.Earning
	if e.FenPerPoint < 1 {
		bad("earning.fenPerPoint", "%d: want at least 1", e.FenPerPoint)
	}
	for name, c := range e.Channels {
		if c.FenPerPoint < 0 {
			bad("earning.channels."+name+".fenPerPoint", "%d: want at least 1 (or leave it out)", c.FenPerPoint)
		}
		checkMultiplier(bad, "earning.channels."+name+".multiplier", c.Multiplier, true)
	}
	for name, m := range e.Categories {
		checkMultiplier(bad, "earning.categories."+name, m, false)
	}
	for name, m := range e.Tiers {
		checkMultiplier(bad, "earning.tiers."+name, m, false)
		if !slices.ContainsFunc(r.Tiers.Levels, func(l Level) bool { return l.Name == name }) {
			bad("earning.tiers."+name, "no level %q on the ladder", name)
		}
	}
	for i, c := range e.Campaigns {
		field := fmt.Sprintf("earning.campaigns.%d", i)
		if c.Name == "" {
			bad(field+".name", "required")
		}
		if !c.End.After(c.Start) {
			bad(field+".end", "must be after start")
		}
		checkMultiplier(bad, field+".multiplier", c.Multiplier, false)
		if !validSegment(c.Segment, r.Tiers.Levels) {
			bad(field+".segment", "%q: want all, plaintext, ciphertext or tier:<level>", c.Segment)
		}
	}
	if e.Caps.PerOrder < 0 || e.Caps.PerDay < 0 {
		bad("earning.caps", "caps cannot be negative")
	}
}

// checkMultiplier accepts 0..100 with at most four decimals (1.5, 0.25); optional ones may be 0
// (left out).
func checkMultiplier(bad func(string, string, ...any), field string, m float64, optional bool) {
	if optional && m == 0 {
		return
	}
	if m < 0 || m > 100 || math.Abs(m*10000-math.Round(m*10000)) > 1e-6 {
		bad(field, "%v: want 0..100 with at most 4 decimals", m)
	}
}

func validSegment(s string, levels []Level) bool {
	switch {
	case s == "" || s == "all" || s == "plaintext" || s == "ciphertext":
		return true
	case strings.HasPrefix(s, "tier:"):
		name := strings.TrimPrefix(s, "tier:")
		return slices.ContainsFunc(levels, func(l Level) bool { return l.Name == name })
	}
	return false
}

func (r *Rules) checkTiers(bad func(string, string, ...any)) {
	t := r.Tiers
	if t.Basis != BasisSpend && t.Basis != BasisGrowth {
		bad("tiers.basis", "%q: want spend or growth", t.Basis)
	}
	if t.Basis == BasisGrowth && (t.GrowthPerYuan <= 0 || t.GrowthPerYuan > maxGrowthPerYuan) {
		bad("tiers.growthPerYuan", "%v: growth needs a positive rate, at most %d per yuan", t.GrowthPerYuan, maxGrowthPerYuan)
	}
	if t.WindowDays < 1 {
		bad("tiers.windowDays", "%d: want at least 1", t.WindowDays)
	}
	if t.GraceDays < 0 || t.MinStayDays < 0 {
		bad("tiers.graceDays", "grace and minimum stay cannot be negative")
	}
	if t.EvaluationDay < 1 || t.EvaluationDay > 28 {
		bad("tiers.evaluationDay", "%d: want 1..28 (every month has it)", t.EvaluationDay)
	}
	if len(t.Levels) == 0 {
		bad("tiers.levels", "at least one level")
		return
	}
	if err := r.Ladder().Validate(); err != nil {
		bad("tiers.levels", "%v", err)
	}
}

// Ladder is the tier ladder the rules describe (thresholds in the basis' unit).
func (r *Rules) Ladder() Ladder { return Ladder(slices.Clone(r.Tiers.Levels)) }

// Location is the rules' time zone.
func (r *Rules) Location() *time.Location { return r.location }

// Day is the rules' calendar day of t, as YYYY-MM-DD.
func (r *Rules) Day(t time.Time) string { return t.In(r.location).Format(time.DateOnly) }

// lineOf finds the line of a dotted field path in the YAML tree, or of its nearest existing parent.
func lineOf(root *yaml.Node, field string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range strings.Split(field, ".") {
		next := child(n, part)
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

func child(n *yaml.Node, key string) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i]
		}
	}
	return nil
}
