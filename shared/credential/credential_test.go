package credential

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	jdToken       = "jd-shop-9-token-0123456789"
	tmallToken    = "tmall-token-abcdefghijklmnop"
	eventingToken = "eventing-token-9876543210abc"
)

func testSenders(t *testing.T) *Senders {
	t.Helper()
	s, err := ParseSenders([]byte(`[
		{"name":"jd-shop-9","token":"` + jdToken + `","sources":["jd/jd-shop-9"]},
		{"name":"tmall","token":"` + tmallToken + `","sources":["tmall/*"]},
		{"name":"eventing","token":"` + eventingToken + `","sources":["*"],"internal":true}]`))
	require.NoError(t, err)
	return s
}

func TestSenderAuthenticateAndScope(t *testing.T) {
	s := testSenders(t)
	tests := []struct {
		name        string
		header      string
		eventType   string
		source      string
		wantSender  string
		wantAuthErr error
		wantField   string
	}{
		{"exact source", "Bearer " + jdToken, events.OrderPaid, "jd/jd-shop-9", "jd-shop-9", nil, ""},
		{"scheme in any case", "bearer " + jdToken, events.OrderPaid, "jd/jd-shop-9", "jd-shop-9", nil, ""},
		{"another shop of the same platform", "Bearer " + jdToken, events.OrderPaid, "jd/jd-shop-10", "jd-shop-9", nil, "source"},
		{"another platform", "Bearer " + jdToken, events.OrderPaid, "tmall/shop-1001", "jd-shop-9", nil, "source"},
		{"an internal type", "Bearer " + jdToken, events.PointsAwarded, "jd/jd-shop-9", "jd-shop-9", nil, "type"},
		{"the chain's own source", "Bearer " + tmallToken, events.OrderPaid, "omnimember/webhooks/tmall", "tmall", nil, "source"},
		{"prefix pattern", "Bearer " + tmallToken, events.OrderRefunded, "tmall/shop-1001", "tmall", nil, ""},
		{"prefix is not the platform itself", "Bearer " + tmallToken, events.OrderRefunded, "tmallx/shop", "tmall", nil, "source"},
		{"internal scope", "Bearer " + eventingToken, events.IdentityResolved, "omnimember/match", "eventing", nil, ""},
		{"no header", "", events.OrderPaid, "jd/jd-shop-9", "", ErrMissing, ""},
		{"basic auth", "Basic " + jdToken, events.OrderPaid, "jd/jd-shop-9", "", ErrMissing, ""},
		{"unknown token", "Bearer " + strings.Repeat("x", 26), events.OrderPaid, "jd/jd-shop-9", "", ErrUnknown, ""},
		{"a prefix of a token", "Bearer " + jdToken[:20], events.OrderPaid, "jd/jd-shop-9", "", ErrUnknown, ""},
		{"a token and more", "Bearer " + jdToken + "x", events.OrderPaid, "jd/jd-shop-9", "", ErrUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender, err := s.Authenticate(tt.header)
			if tt.wantAuthErr != nil {
				require.ErrorIs(t, err, tt.wantAuthErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantSender, sender.Name, "got sender, want")
			field, err := sender.Check(tt.eventType, tt.source)
			assert.Equal(t, tt.wantField, field, "got refused field, want (error %v)", err)
			assert.Equal(t, tt.wantField != "", err != nil, "got error %v", err)
		})
	}
}

func TestNoSenderConfiguredIsClosed(t *testing.T) {
	for name, s := range map[string]*Senders{"nil": nil, "empty": {}} {
		_, err := s.Authenticate("Bearer " + jdToken)
		assert.ErrorIs(t, err, ErrClosed, name)
		_, err = s.Authenticate("")
		assert.ErrorIs(t, err, ErrMissing, name, "anonymous is told a credential is needed")
	}
	s, err := SendersFromEnv(func(string) string { return "" })
	require.NoError(t, err)
	_, err = s.Authenticate("Bearer " + jdToken)
	assert.ErrorIs(t, err, ErrClosed, "unset variables mean closed, never open")
}

func TestParseSendersRefusesWeakOrAmbiguousConfig(t *testing.T) {
	tests := map[string]string{
		"short token":        `[{"name":"a","token":"short","sources":["*"]}]`,
		"no sources":         `[{"name":"a","token":"` + jdToken + `"}]`,
		"star in the middle": `[{"name":"a","token":"` + jdToken + `","sources":["jd/*/x"]}]`,
		"same token twice":   `[{"name":"a","token":"` + jdToken + `","sources":["*"]},{"name":"b","token":"` + jdToken + `","sources":["*"]}]`,
		"same name twice":    `[{"name":"a","token":"` + jdToken + `","sources":["*"]},{"name":"a","token":"` + tmallToken + `","sources":["*"]}]`,
		"misspelt field":     `[{"name":"a","token":"` + jdToken + `","source":["*"]}]`,
		"token with space":   `[{"name":"a","token":"abc def ghi jkl mno","sources":["*"]}]`,
		"not a list":         `{"name":"a"}`,
		"trailing data":      `[] []`,
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSenders([]byte(raw))
			require.Error(t, err)
			assert.NotContains(t, err.Error(), jdToken, "errors never quote a token")
		})
	}
}

func TestSendersFromFileWinsAndLogsMasked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "senders.json")
	require.NoError(t, os.WriteFile(path, []byte(`[{"name":"from-file","token":"`+tmallToken+`","sources":["tmall/*"]}]`), 0o600))
	env := map[string]string{
		SendersFileEnv: path,
		SendersEnv:     `[{"name":"from-env","token":"` + jdToken + `","sources":["*"]}]`,
	}
	s, err := SendersFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, 1, s.Len())
	assert.Equal(t, "from-file", s.List()[0].Name)

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "senders", s)
	assert.Contains(t, buf.String(), "from-file")
	assert.NotContains(t, buf.String(), tmallToken)
}

func TestReaderScopesAndLookupBucket(t *testing.T) {
	now := time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)
	r, err := ParseReaders([]byte(`[
		{"name":"pos-app","token":"` + jdToken + `","scopes":["profile","lookup"],"lookupsPerMinute":6,"lookupBurst":2},
		{"name":"desk","token":"` + tmallToken + `","scopes":["orders"]}]`))
	require.NoError(t, err)
	r.SetClock(func() time.Time { return now })

	pos, err := r.Authenticate("Bearer "+jdToken, ScopeLookup)
	require.NoError(t, err)
	_, err = r.Authenticate("Bearer "+jdToken, ScopeOrders)
	assert.ErrorIs(t, err, ErrScope)
	_, err = r.Authenticate("Bearer nope-nope-nope-nope-nope", ScopeProfile)
	assert.ErrorIs(t, err, ErrUnknown)
	desk, err := r.Authenticate("Bearer "+tmallToken, ScopeOrders)
	require.NoError(t, err)
	assert.Equal(t, DefaultLookupsPerMinute, desk.LookupsPerMinute, "the default rate is filled in")

	for i := range 2 {
		ok, _ := r.TakeLookup(pos)
		require.True(t, ok, "lookup %d within the burst", i)
	}
	ok, retry := r.TakeLookup(pos)
	require.False(t, ok, "the third lookup at once exceeds the burst")
	assert.Equal(t, 10*time.Second, retry, "got retry after, want one lookup's refill at 6 a minute")
	ok, _ = r.TakeLookup(desk)
	assert.True(t, ok, "buckets are per credential")

	now = now.Add(10 * time.Second)
	ok, _ = r.TakeLookup(pos)
	assert.True(t, ok, "refilled after the wait")
}

func TestParseReadersRefusesBadConfig(t *testing.T) {
	tests := map[string]string{
		"no scopes":     `[{"name":"a","token":"` + jdToken + `"}]`,
		"unknown scope": `[{"name":"a","token":"` + jdToken + `","scopes":["write"]}]`,
		"rate too high": `[{"name":"a","token":"` + jdToken + `","scopes":["lookup"],"lookupsPerMinute":9999999}]`,
		"negative":      `[{"name":"a","token":"` + jdToken + `","scopes":["lookup"],"lookupBurst":-1}]`,
		"short token":   `[{"name":"a","token":"x","scopes":["lookup"]}]`,
	}
	for name, raw := range tests {
		_, err := ParseReaders([]byte(raw))
		assert.Error(t, err, name)
	}
	r, err := ReadersFromEnv(func(string) string { return "" })
	require.NoError(t, err)
	_, err = r.Authenticate("Bearer "+jdToken, ScopeProfile)
	assert.True(t, errors.Is(err, ErrClosed), "unset means closed: got %v", err)
}

// FuzzAuthenticate: any Authorization header either fails or names the sender whose token it
// carries exactly; nothing panics.
func FuzzAuthenticate(f *testing.F) {
	for _, seed := range []string{"", "Bearer " + jdToken, "bearer  " + tmallToken + " ", "Bearer", "Basic x", "Bearer \x00"} {
		f.Add(seed)
	}
	s, err := NewSenders(Sender{Name: "jd", Token: jdToken, Sources: []string{"jd/*"}}, Sender{Name: "tmall", Token: tmallToken, Sources: []string{"tmall/*"}})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, header string) {
		sender, err := s.Authenticate(header)
		if err != nil {
			return
		}
		token, _ := Bearer(header)
		assert.Equal(t, sender.Token, token, "authenticated by exactly its token")
	})
}

// TestOnlyANamedPatternSendsHistory: history (backfill/ sources) needs a pattern that names it; a
// channel connector's `*`, and make run's development sender, do not cover it.
func TestOnlyANamedPatternSendsHistory(t *testing.T) {
	tests := []struct {
		sender Sender
		want   bool
	}{
		{Sender{Name: "all channels", Sources: []string{"*"}}, false},
		{DevSender("dev-token-0123456789"), false},
		{Sender{Name: "jd", Sources: []string{"jd/*"}}, false},
		{Sender{Name: "backfill", Sources: []string{HistoryPrefix + "*"}}, true},
		{Sender{Name: "one shop's history", Sources: []string{"jd/*", HistoryPrefix + "jd/jd-shop-9"}}, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.sender.MaySendHistory(), "%s: got, want", tt.sender.Name)
	}
}

func TestSameComparesWholeTokens(t *testing.T) {
	const token = "operator-token-0123456789"
	tests := []struct {
		presented string
		want      bool
	}{
		{token, true},
		{token[:len(token)-1], false},
		{token + "x", false},
		{"", false},
		{"OPERATOR-TOKEN-0123456789", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Same(tt.presented, token), "Same(%q): got, want", tt.presented)
	}
}
