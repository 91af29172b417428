package admit

import (
	"errors"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func order(paidAt time.Time, ids ...events.Identity) *events.OrderPaidData {
	return &events.OrderPaidData{OrderID: "o", Channel: "jd", ShopID: "s", AmountFen: 100, PaidAt: paidAt, Identities: ids}
}

func TestWindowsLiveAndHistory(t *testing.T) {
	pin := events.Identity{Type: "jd_pin", Value: "p"}
	live := Policy{Window: Live(DefaultMaxAge, DefaultMaxSkew), Now: func() time.Time { return now }}
	history := Policy{Window: History(DefaultMaxSkew), Now: func() time.Time { return now }}
	for _, tc := range []struct {
		name          string
		paidAt        time.Time
		live, history bool // admitted
	}{
		{"now", now, true, true},
		{"within the skew", now.Add(4 * time.Minute), true, true},
		{"past the skew", now.Add(6 * time.Minute), false, false},
		{"six days ago", now.AddDate(0, 0, -6), true, true},
		{"eight days ago", now.AddDate(0, 0, -8), false, true},
		{"three years ago", now.AddDate(-3, 0, 0), false, true},
		{"before 2000", time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), false, false},
		{"year 9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				p    Policy
				want bool
			}{{live, tc.live}, {history, tc.history}} {
				err := c.p.CheckData(events.OrderPaid, order(tc.paidAt, pin))
				if c.want {
					require.NoError(t, err)
					continue
				}
				var fe *events.FieldError
				require.True(t, errors.As(err, &fe), "got %v", err)
				assert.Equal(t, "data.paidAt", fe.Field)
				assert.False(t, Form(err), "a time is content, not form")
			}
		})
	}
	reg := &events.MemberRegisteredData{Channel: "pos", ShopID: "s", RegisteredAt: now.AddDate(-5, 0, 0), Identities: []events.Identity{pin}}
	require.NoError(t, live.CheckData(events.MemberRegistered, reg), "a registration date may be old")
}

func TestWindowValidate(t *testing.T) {
	require.NoError(t, Live(DefaultMaxAge, DefaultMaxSkew).Validate())
	require.Error(t, Live(time.Minute, DefaultMaxSkew).Validate(), "too short for retries")
	require.Error(t, Live(365*24*time.Hour, DefaultMaxSkew).Validate(), "history belongs to the backfill")
	require.Error(t, Live(DefaultMaxAge, 2*time.Hour).Validate())
	require.NoError(t, History(DefaultMaxSkew).Validate())
}

func TestEventsOnlyWeakOrBlockedCannotMoveMoney(t *testing.T) {
	p := Policy{Window: Live(DefaultMaxAge, DefaultMaxSkew), Now: func() time.Time { return now }}
	masked := events.Identity{Type: "phone_masked", Value: "138****5678"}
	blocked := events.Identity{Type: "phone", Value: "13800000000"}
	require.Error(t, p.CheckData(events.OrderPaid, order(now, masked)))
	require.Error(t, p.CheckData(events.OrderPaid, order(now, blocked, masked)))
	require.NoError(t, p.CheckData(events.OrderPaid, order(now, masked, events.Identity{Type: "phone", Value: "13812345678"})))
	browse := &events.InteractionRecordedData{Channel: "app", Kind: "page", OccurredAt: now, Identities: []events.Identity{{Type: "anonymous_id", Value: "a"}}}
	require.NoError(t, p.CheckData(events.InteractionRecorded, browse), "browsing before a login stays acknowledged")
}

// BenchmarkCheck is what the edge costs per order (schema validation included; ingest ran it
// before too, so the added cost is the rest).
func BenchmarkCheck(b *testing.B) {
	ev, err := events.Example(events.OrderPaid)
	require.NoError(b, err)
	p := Policy{Window: History(DefaultMaxSkew)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Check(ev); err != nil {
			b.Fatal(err)
		}
	}
}
