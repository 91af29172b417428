package credential

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Variables holding the reader tokens (the file wins when both are set).
const (
	ReadersEnv     = "OMNIMEMBER_READER_TOKENS"
	ReadersFileEnv = "OMNIMEMBER_READER_TOKENS_FILE"
)

// Scopes of a reader: which profile routes it may call.
const (
	ScopeProfile = "profile" // GET /v1/members/{oneId}
	ScopeOrders  = "orders"  // GET /v1/members/{oneId}/orders
	ScopeLookup  = "lookup"  // GET /v1/members:lookup (rate-limited)
)

// Scopes lists every reader scope.
var Scopes = []string{ScopeProfile, ScopeOrders, ScopeLookup}

// Lookup rate defaults and bounds: a channel app or a staff tool looks members up as people
// serve customers, not by the thousand, so a lookup stops being a cheap membership oracle.
const (
	DefaultLookupsPerMinute = 60
	DefaultLookupBurst      = 10
	maxLookupsPerMinute     = 600_000
	maxLookupBurst          = 10_000
)

// Reader is one credential of a system that reads member profiles: a channel app, a staff tool.
type Reader struct {
	Name   string   `json:"name"`
	Token  string   `json:"token"`
	Scopes []string `json:"scopes"`
	// LookupsPerMinute and LookupBurst bound its lookups (a token bucket per credential and
	// process); zero takes the defaults, 60 a minute in bursts of 10.
	LookupsPerMinute int `json:"lookupsPerMinute,omitempty"`
	LookupBurst      int `json:"lookupBurst,omitempty"`
}

// Readers is the validated set of reader credentials with their lookup buckets. nil holds none.
type Readers struct {
	list    []Reader
	tokens  tokenSet
	buckets []*bucket
	now     func() time.Time
}

// DevReader is make run's development reader: every scope, lookups at 1 000 a second.
func DevReader(token string) Reader {
	return Reader{Name: "development", Token: token, Scopes: Scopes, LookupsPerMinute: 60_000, LookupBurst: 1_000}
}

// NewReaders validates the credentials (names and tokens unique, tokens long enough, known scopes,
// rates within bounds) and fills in the default rate.
func NewReaders(list ...Reader) (*Readers, error) {
	var errs []error
	names, tokens := map[string]bool{}, map[string]bool{}
	out := &Readers{now: time.Now}
	for _, r := range list {
		errs = append(errs, checkIdentity("reader", r.Name, r.Token, names, tokens)...)
		errs = append(errs, checkReader(&r)...)
		out.list = append(out.list, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	toks := make([]string, len(out.list))
	for i, r := range out.list {
		toks[i] = r.Token
		out.buckets = append(out.buckets, newBucket(float64(r.LookupsPerMinute)/60, float64(r.LookupBurst)))
	}
	out.tokens = newTokenSet(toks)
	return out, nil
}

func checkReader(r *Reader) []error {
	var errs []error
	if len(r.Scopes) == 0 {
		errs = append(errs, fmt.Errorf("reader %q: no scopes; list some of %v", r.Name, Scopes))
	}
	for _, s := range r.Scopes {
		if !slices.Contains(Scopes, s) {
			errs = append(errs, fmt.Errorf("reader %q: unknown scope %q, want some of %v", r.Name, s, Scopes))
		}
	}
	if r.LookupsPerMinute == 0 {
		r.LookupsPerMinute = DefaultLookupsPerMinute
	}
	if r.LookupBurst == 0 {
		r.LookupBurst = DefaultLookupBurst
	}
	if r.LookupsPerMinute < 1 || r.LookupsPerMinute > maxLookupsPerMinute {
		errs = append(errs, fmt.Errorf("reader %q: lookupsPerMinute %d: want 1..%d", r.Name, r.LookupsPerMinute, maxLookupsPerMinute))
	}
	if r.LookupBurst < 1 || r.LookupBurst > maxLookupBurst {
		errs = append(errs, fmt.Errorf("reader %q: lookupBurst %d: want 1..%d", r.Name, r.LookupBurst, maxLookupBurst))
	}
	return errs
}

// ParseReaders reads a JSON array of readers:
// `[{"name":"wecom-desk","token":"…","scopes":["profile","lookup"],"lookupsPerMinute":30}]`.
func ParseReaders(raw []byte) (*Readers, error) {
	list, err := decodeList[Reader](raw, "reader tokens")
	if err != nil {
		return nil, err
	}
	return NewReaders(list...)
}

// ReadersFromEnv reads OMNIMEMBER_READER_TOKENS_FILE or OMNIMEMBER_READER_TOKENS; neither set
// gives an empty set (profile routes closed).
func ReadersFromEnv(getenv func(string) string) (*Readers, error) {
	raw, from, err := fromEnv(getenv, ReadersEnv, ReadersFileEnv)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return NewReaders()
	}
	r, err := ParseReaders(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return r, nil
}

// With returns the set plus more credentials (make run adds its development reader).
func (r *Readers) With(more ...Reader) (*Readers, error) {
	var list []Reader
	if r != nil {
		list = append(list, r.list...)
	}
	return NewReaders(append(list, more...)...)
}

// SetClock replaces the clock of the lookup buckets (tests).
func (r *Readers) SetClock(now func() time.Time) { r.now = now }

// Len is how many credentials the set holds.
func (r *Readers) Len() int {
	if r == nil {
		return 0
	}
	return len(r.list)
}

// Authenticate finds the reader of an Authorization header and checks it holds the scope; a
// reader without it gets ErrScope.
func (r *Readers) Authenticate(header, scope string) (*Reader, error) {
	var tokens tokenSet
	if r != nil {
		tokens = r.tokens
	}
	i, err := tokens.authenticate(header)
	if err != nil {
		return nil, err
	}
	c := &r.list[i]
	if !slices.Contains(c.Scopes, scope) {
		return c, fmt.Errorf("%w: reader %q may not use %s", ErrScope, c.Name, scope)
	}
	return c, nil
}

// ErrScope: a valid reader without the route's scope (403).
var ErrScope = errors.New("scope not granted")

// TakeLookup spends one lookup of the reader's bucket; when it is empty, retryAfter says when
// the next one is available.
func (r *Readers) TakeLookup(c *Reader) (ok bool, retryAfter time.Duration) {
	i := slices.IndexFunc(r.list, func(x Reader) bool { return x.Name == c.Name })
	if i < 0 {
		return false, time.Minute
	}
	return r.buckets[i].take(r.now())
}

// LogValue shows names, scopes and rates, never a token.
func (r *Readers) LogValue() slog.Value {
	if r.Len() == 0 {
		return slog.StringValue("none (closed)")
	}
	attrs := make([]slog.Attr, 0, len(r.list))
	for _, c := range r.list {
		attrs = append(attrs, slog.String(c.Name, fmt.Sprintf("%s lookups=%d/min burst=%d token=***",
			strings.Join(c.Scopes, ","), c.LookupsPerMinute, c.LookupBurst)))
	}
	return slog.GroupValue(attrs...)
}

// bucket is a token bucket: capacity burst, refilled at rate per second.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, burst float64) *bucket { return &bucket{rate: rate, burst: burst, tokens: burst} }

func (b *bucket) take(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	return false, wait
}
