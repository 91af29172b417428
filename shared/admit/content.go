package admit

import (
	"fmt"
	"sync"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
)

// content is what the content checks look at in a channel event's data: the channel and shop it
// names (shop empty where the data has none), its identities and its times. live are the times a
// live sender may only give within the window; future the ones that may lie in the past (a
// registration date) but not in the future.
type content struct {
	channel    string
	shop       string
	identities []events.Identity
	live       []stamp
	future     []stamp
}

type stamp struct {
	field string
	at    time.Time
}

// facts picks the channel, shop, identities and times out of decoded channel data; false for other
// types.
func facts(data any) (content, bool) {
	switch d := data.(type) {
	case *events.OrderPaidData:
		return content{channel: d.Channel, shop: d.ShopID, identities: d.Identities, live: []stamp{{"data.paidAt", d.PaidAt}}}, true
	case *events.OrderRefundedData:
		return content{channel: d.Channel, shop: d.ShopID, identities: d.Identities, live: []stamp{{"data.refundedAt", d.RefundedAt}}}, true
	case *events.InteractionRecordedData:
		return content{channel: d.Channel, identities: d.Identities, live: []stamp{{"data.occurredAt", d.OccurredAt}}}, true
	case *events.MemberRegisteredData:
		return content{channel: d.Channel, shop: d.ShopID, identities: d.Identities, future: []stamp{{"data.registeredAt", d.RegisteredAt}}}, true
	}
	return content{}, false
}

// identities normalises the identities as match does (shared/identity): each must normalise, the
// normalised list must fit the contract (a plaintext phone becomes three), and money — an order or
// a refund — needs one identity that can resolve a member: strong or scoped under the rules, and
// not on the blocklist. Interactions and registrations may carry weak identities only (browsing
// before a login): match acknowledges them as unresolved, MISSION §5's rule for weak ids.
func (p Policy) identities(eventType string, ids []events.Identity) error {
	norm, err := identity.NormalizeAll(ids)
	if err != nil {
		for i, id := range ids { // name the one that failed
			if _, err := identity.Normalize(id); err != nil {
				return refuse(CheckIdentities, fmt.Sprintf("data.identities.%d", i), "%v", err)
			}
		}
		return refuse(CheckIdentities, "data.identities", "%v", err)
	}
	if len(norm) > events.MaxIdentities {
		return refuse(CheckIdentities, "data.identities", "%d identities after normalisation (a phone counts as three), at most %d",
			len(norm), events.MaxIdentities)
	}
	if eventType != events.OrderPaid && eventType != events.OrderRefunded {
		return nil
	}
	for _, id := range norm {
		if _, blocked := p.rules().Blocked(id); !blocked && p.rules().Rule(id.Type).Strength != identity.Weak {
			return nil
		}
	}
	return refuse(CheckIdentities, "data.identities", "no identity can resolve a member: want a strong or shop-scoped id "+
		"(a phone, its hash, a platform or member id) that is not on the blocklist; weak ids such as a masked phone only attach to one")
}

func (p Policy) rules() *identity.Rules {
	if p.Rules == nil {
		return defaultRules()
	}
	return p.Rules
}

// defaultRules parses the built-in rules once.
var defaultRules = sync.OnceValue(identity.DefaultRules)

// Window bounds the times a live event may carry, against the clock of the server that received
// it: no later than MaxSkew ahead (clocks differ), no earlier than MaxAge ago (a platform's
// retries, a sender's queue). Older history goes through the backfill path, which has its own
// rules (History). The loyalty caps count the day the server received a live event, so the
// window is what keeps a sender from spreading orders over days of its choosing.
type Window struct {
	MaxAge  time.Duration
	MaxSkew time.Duration
	// History admits times of any age back to Earliest (backfill, the platform pollers).
	History bool
}

// Defaults of the live window: seven days back covers platform retries (WeChat and WeCom retry
// within seconds, Douyin and Youzan within hours, TMC keeps messages three days) and a sender's
// queue after an outage; five minutes ahead covers clock skew.
const (
	DefaultMaxAge  = 7 * 24 * time.Hour
	DefaultMaxSkew = 5 * time.Minute
)

// Earliest is the oldest time any event may carry, history included: older is a typo or a zero
// value, not a member's purchase.
var Earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Live is the window of events from live senders.
func Live(maxAge, maxSkew time.Duration) Window { return Window{MaxAge: maxAge, MaxSkew: maxSkew} }

// History is the window of the backfill path: any age back to Earliest, never in the future.
func History(maxSkew time.Duration) Window { return Window{MaxSkew: maxSkew, History: true} }

// Validate checks a configured window.
func (w Window) Validate() error {
	switch {
	case w.MaxSkew < 0 || w.MaxSkew > time.Hour:
		return fmt.Errorf("clock skew %s: want 0..1h", w.MaxSkew)
	case !w.History && (w.MaxAge < time.Hour || w.MaxAge > 90*24*time.Hour):
		return fmt.Errorf("max age %s: want 1h..2160h (90 days); older history goes through the backfill", w.MaxAge)
	}
	return nil
}

func (w Window) check(c content, now time.Time) error {
	latest := now.Add(w.MaxSkew)
	earliest := now.Add(-w.MaxAge)
	if w.History {
		earliest = Earliest
	}
	for _, s := range append(c.live, c.future...) {
		if s.at.After(latest) {
			return refuse(CheckTime, s.field, "%s is in the future: at most %s after the server's clock (%s)",
				s.at.Format(time.RFC3339), w.MaxSkew, now.UTC().Format(time.RFC3339))
		}
		if s.at.Before(Earliest) {
			return refuse(CheckTime, s.field, "%s is before %s", s.at.Format(time.RFC3339), Earliest.Format(time.DateOnly))
		}
	}
	for _, s := range c.live {
		if s.at.Before(earliest) {
			return refuse(CheckTime, s.field, "%s is more than %s before the server's clock (%s): older history goes through the backfill (make backfill)",
				s.at.Format(time.RFC3339), w.MaxAge, now.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
