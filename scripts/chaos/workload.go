package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/identity"
)

// Person is one generated customer: the phone everything of theirs leads back to.
type Person struct {
	Phone string
	// ID names the person in channel ids and event ids, which travel beyond match in clear: a
	// phone must not be part of them.
	ID     string
	Orders map[string]*Order // by channel + order id
}

// Order is one generated order and the refunds it will get.
type Order struct {
	Channel, ID string
	PaidFen     int64
	RefundsFen  []int64
}

// NetFen is what the buyer kept paying for.
func (o *Order) NetFen() int64 {
	net := o.PaidFen
	for _, r := range o.RefundsFen {
		net -= r
	}
	return net
}

// Workload is the generated input: the events to send (with duplicates, re-ids and reordering
// already in them) and the people they belong to.
type Workload struct {
	People []*Person
	Events []cloudevents.Event
}

var channels = []string{events.ChannelTmall, events.ChannelDouyin, events.ChannelJD, events.ChannelWeChat, events.ChannelPOS, events.ChannelApp}

// Generate makes orders for people across every channel: phones in every format platforms send and
// as hashes, platform ids, partial and full refunds, registrations, webhooks delivered twice, the
// same order under another event id, and refunds sent before their orders.
func Generate(people, orders int, seed uint64) *Workload {
	rng := rand.New(rand.NewPCG(seed, 7))
	w := &Workload{}
	// Orders are paid from six days ago on, at most a minute apart and within five days, so every
	// one is inside ingest's live window (seven days by default) when it is sent.
	base := time.Now().UTC().Add(-6 * 24 * time.Hour).Truncate(time.Second)
	step := min(time.Minute, 5*24*time.Hour/time.Duration(max(orders, 1)))
	for i := range people {
		p := &Person{Phone: fmt.Sprintf("15%09d", 100_000_000+int(seed%1000)*100_000+i), ID: fmt.Sprintf("%d-%d", seed, i), Orders: map[string]*Order{}}
		w.People = append(w.People, p)
		// Everyone registers with a plaintext phone once, so an MD5-only and a SHA-256-only order of
		// theirs meet on one member (two different hashes alone never link: nothing says they match).
		w.add(rng, registration(p, base))
	}
	for n := range orders {
		p := w.People[rng.IntN(people)]
		ch := channels[rng.IntN(len(channels))]
		o := &Order{Channel: ch, ID: fmt.Sprintf("%s-%d-%d", ch, seed, n), PaidFen: int64(500 + rng.IntN(300_000))}
		p.Orders[ch+"/"+o.ID] = o
		at := base.Add(time.Duration(n) * step)
		paid := orderPaid(rng, p, o, at)
		refunds := refundsFor(rng, p, o, at)
		if len(refunds) > 0 && rng.IntN(4) == 0 {
			w.add(rng, refunds...) // the refund webhook came first
			w.add(rng, paid)
		} else {
			w.add(rng, paid)
			w.add(rng, refunds...)
		}
		if rng.IntN(20) == 0 { // the platform re-sent the order under a new message id
			again := paid.Clone()
			again.SetID(paid.ID() + "-resent")
			w.add(rng, again)
		}
	}
	return w
}

// add appends events, one in ten twice (a webhook retried after a lost 2xx).
func (w *Workload) add(rng *rand.Rand, evs ...cloudevents.Event) {
	for _, ev := range evs {
		w.Events = append(w.Events, ev)
		if rng.IntN(10) == 0 {
			w.Events = append(w.Events, ev.Clone())
		}
	}
}

func registration(p *Person, at time.Time) cloudevents.Event {
	data := events.MemberRegisteredData{Channel: events.ChannelApp, ShopID: "app", RegisteredAt: at,
		Identities: []events.Identity{{Type: "phone", Value: p.Phone}, {Type: "app_user_id", Value: "u-" + p.ID}}}
	return mustEvent(events.MemberRegistered, "reg-"+p.ID, admit.Source(data.Channel, data.ShopID), at, data)
}

func orderPaid(rng *rand.Rand, p *Person, o *Order, at time.Time) cloudevents.Event {
	data := events.OrderPaidData{OrderID: o.ID, Channel: o.Channel, ShopID: o.Channel + "-shop", AmountFen: o.PaidFen, PaidAt: at,
		Identities: identitiesFor(rng, p, o.Channel)}
	return mustEvent(events.OrderPaid, "paid-"+o.ID, admit.Source(data.Channel, data.ShopID), at, data)
}

// refundsFor: most orders keep their money; some get one or two partial refunds, some a full one.
func refundsFor(rng *rand.Rand, p *Person, o *Order, at time.Time) []cloudevents.Event {
	switch r := rng.IntN(100); {
	case r < 8:
		o.RefundsFen = []int64{o.PaidFen}
	case r < 20:
		first := 1 + rng.Int64N(o.PaidFen/2)
		o.RefundsFen = []int64{first}
		if rng.IntN(2) == 0 {
			o.RefundsFen = append(o.RefundsFen, 1+rng.Int64N(o.PaidFen-first))
		}
	}
	out := make([]cloudevents.Event, len(o.RefundsFen))
	for i, fen := range o.RefundsFen {
		refundAt := at.Add(time.Duration(i+1) * time.Hour)
		data := events.OrderRefundedData{OrderID: o.ID, RefundID: fmt.Sprintf("%s-r%d", o.ID, i), Channel: o.Channel,
			ShopID: o.Channel + "-shop", AmountFen: fen, RefundedAt: refundAt, Identities: identitiesFor(rng, p, o.Channel)}
		out[i] = mustEvent(events.OrderRefunded, fmt.Sprintf("refund-%s-%d", o.ID, i), admit.Source(data.Channel, data.ShopID), refundAt, data)
	}
	return out
}

// identitiesFor writes the person's phone the way the channel might: formatted variants, or only
// its hash (Douyin's ads side sends SHA-256, Tencent's MD5), always something that leads to them.
func identitiesFor(rng *rand.Rand, p *Person, channel string) []events.Identity {
	phone := p.Phone
	switch rng.IntN(7) {
	case 0:
		return []events.Identity{{Type: "phone_sha256", Value: identity.PhoneSHA256(phone)}}
	case 1:
		return []events.Identity{{Type: "phone_md5", Value: identity.PhoneMD5(phone)}}
	case 2:
		phone = "+86 " + phone
	case 3:
		phone = "0086" + phone
	case 4:
		phone = phone[:3] + "-" + phone[3:7] + "-" + phone[7:]
	case 5:
		phone = fullWidth(phone)
	}
	ids := []events.Identity{{Type: "phone", Value: phone}}
	if channel == events.ChannelJD {
		ids = append(ids, events.Identity{Type: "jd_pin", Value: "pin-" + p.ID})
	}
	return ids
}

func fullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r - '0' + '０')
	}
	return b.String()
}

// mustEvent builds a generated event under the source a sender of its shop posts with,
// `<channel>/<shopId>` (admit.Source: /v1/events refuses data that disagrees with its source).
func mustEvent(typ, id, source string, at time.Time, data any) cloudevents.Event {
	ev, err := events.New(typ, id, source, at, data)
	if err != nil {
		panic(err) // generated data always encodes
	}
	return ev
}
