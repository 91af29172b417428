// Package demo replays realistic multi-channel webhooks through the running chain and prints what
// became of three shoppers: one member each, everywhere.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/notify"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// Person is a demo shopper.
type Person struct {
	Name  string
	Phone string
}

// People are the demo's shoppers.
var People = []Person{{"张伟 Zhang Wei", "13812345678"}, {"李娜 Li Na", "13987654321"}, {"王芳 Wang Fang", "13700001234"}}

// Step is one webhook of the replay.
type Step struct {
	Note  string
	Event cloudevents.Event
}

func id(typ, value string) events.Identity { return events.Identity{Type: typ, Value: value} }

func scoped(typ, value, scope string) events.Identity {
	return events.Identity{Type: typ, Value: value, Scope: scope}
}

// Steps builds the replay, with times just before now so the rolling tier window counts them and
// ingest's live window (seven days by default) admits them: the story's "days" are eight hours
// apart, so day(20) is under a week ago.
func Steps(now time.Time) ([]Step, error) {
	day := func(n int) time.Time { return now.Add(time.Duration(-n) * 8 * time.Hour).Truncate(time.Second) }
	zhang, li, wang := People[0].Phone, People[1].Phone, People[2].Phone
	paid := func(channel, shop, order string, fen int64, at time.Time, ids ...events.Identity) events.OrderPaidData {
		return events.OrderPaidData{OrderID: order, Channel: channel, ShopID: shop, AmountFen: fen, PaidAt: at, Identities: ids}
	}
	refund := func(channel, order, refundID string, fen int64, at time.Time, ids ...events.Identity) events.OrderRefundedData {
		return events.OrderRefundedData{OrderID: order, RefundID: refundID, Channel: channel, AmountFen: fen, RefundedAt: at, Identities: ids}
	}
	jdOrder := paid("jd", "jd-shop-9", "JD-300127", 218000, day(8), id("jd_pin", "jd_zw_88"), id("phone", "+86 138-1234-5678"))
	tmallRetry := paid("tmall", "shop-1001", "TM-77120", 88000, day(3), scoped("tmall_ouid", "AAH9wf", "shop-1001"), id("phone_sha256", identity.PhoneSHA256(wang)))
	plan := []struct {
		note, typ, id, source string
		data                  any
	}{
		{"张伟 pays ¥1,299 on Tmall (hashed phone only)", events.OrderPaid, "demo-tm-1", "tmall/shop-1001",
			paid("tmall", "shop-1001", "TM-66001", 129900, day(20), scoped("tmall_ouid", "AAF3kT", "shop-1001"), id("tmall_omid", "omid-zw"), id("phone_sha256", identity.PhoneSHA256(zhang)))},
		{"张伟 pays ¥2,180 on JD (plaintext phone, another format)", events.OrderPaid, "demo-jd-1", "jd/jd-shop-9", jdOrder},
		{"JD retries the same webhook", events.OrderPaid, "demo-jd-1", "jd/jd-shop-9", jdOrder},
		{"李娜 pays ¥599 on Douyin (masked phone only)", events.OrderPaid, "demo-dy-1", "douyin/dy-shop-5",
			paid("douyin", "dy-shop-5", "6918234400012345678", 59900, day(15), scoped("douyin_openid", "BgDXF0", "dy-shop-5"), id("douyin_unionid", "dyu-ln"), id("phone_masked", "139****4321"))},
		{"李娜 pays ¥899 in the WeChat mini-program", events.OrderPaid, "demo-wx-1", "wechat/wx-app-1",
			paid("wechat", "wx-app-1", "WX-5521", 89900, day(12), scoped("wechat_openid", "oX1-ln", "wx-app-1"), id("wechat_unionid", "wxu-ln"), id("phone", li))},
		{"李娜 joins the Douyin membership with her phone: two members become one", events.MemberRegistered, "demo-dy-reg", "douyin/dy-shop-5",
			events.MemberRegisteredData{Channel: "douyin", ShopID: "dy-shop-5", RegisteredAt: day(10), Identities: []events.Identity{id("douyin_unionid", "dyu-ln"), id("phone", li)}}},
		{"李娜 gets ¥200 back on the Douyin order", events.OrderRefunded, "demo-dy-rf", "douyin/dy-shop-5",
			refund("douyin", "6918234400012345678", "7012345678901234567", 20000, day(9), scoped("douyin_openid", "BgDXF0", "dy-shop-5"))},
		{"王芳 pays ¥450 at the Shanghai store", events.OrderPaid, "demo-pos-1", "pos/store-sh-01",
			paid("pos", "store-sh-01", "POS-SH01-0042", 45000, day(6), id("pos_card", "card-8812"), id("phone", wang))},
		{"王芳 pays ¥880 on Tmall", events.OrderPaid, "demo-tm-2", "tmall/shop-1001", tmallRetry},
		{"Tmall sends the same order again under a new message id", events.OrderPaid, "demo-tm-2-again", "tmall/shop-1001", tmallRetry},
		{"王芳 returns the store purchase", events.OrderRefunded, "demo-pos-rf", "pos/store-sh-01",
			refund("pos", "POS-SH01-0042", "RF-0042", 45000, day(2), id("pos_card", "card-8812"))},
		{"王芳 watches a live stream in the app", events.InteractionRecorded, "demo-app-1", "app/ios",
			events.InteractionRecordedData{Channel: "app", Kind: "live_view", OccurredAt: day(1), Identities: []events.Identity{id("anonymous_id", "anon-7f3"), id("app_user_id", "u-100234"), id("phone", wang)}}},
	}
	steps := make([]Step, 0, len(plan))
	for _, p := range plan {
		ev, err := events.New(p.typ, p.id, p.source, now, p.data)
		if err != nil {
			return nil, err
		}
		steps = append(steps, Step{Note: p.note, Event: ev})
	}
	return steps, nil
}

// Client reaches a running chain's HTTP API with credentials: SenderToken for POST /v1/events,
// ReaderToken for the profile routes.
type Client struct {
	BaseURL     string
	SenderToken string
	ReaderToken string
	HTTP        *http.Client // nil: one with a 10 s timeout
}

func (c Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Post sends one event to ingest in structured mode and returns the HTTP status.
func (c Client) Post(ctx context.Context, ev cloudevents.Event) (int, error) {
	raw, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/v1/events", bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+c.SenderToken)
	resp, err := c.http().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// Replay posts each step, waiting for the chain to settle between steps so the story reads in order.
func Replay(ctx context.Context, c Client, steps []Step, settle func(context.Context) error, out io.Writer) error {
	for _, s := range steps {
		status, err := c.Post(ctx, s.Event)
		if err != nil {
			return fmt.Errorf("post %s: %w", s.Event.ID(), err)
		}
		fmt.Fprintf(out, "  %-8s %-21s %s → %d\n", channelOf(s.Event), events.ShortName(s.Event.Type()), s.Note, status)
		if status != http.StatusAccepted {
			return fmt.Errorf("ingest answered %d for %s", status, s.Event.ID())
		}
		if err := settle(ctx); err != nil {
			return err
		}
	}
	return nil
}

func channelOf(ev cloudevents.Event) string {
	src, _, _ := strings.Cut(ev.Source(), "/")
	return "[" + src + "]"
}

// Lookup fetches a member's profile by phone through the profile API.
func (c Client) Lookup(ctx context.Context, phone string) (profile.Profile, error) {
	return c.LookupBy(ctx, "phone", phone)
}

// LookupBy fetches a member's profile by any identity.
func (c Client) LookupBy(ctx context.Context, typ, value string) (profile.Profile, error) {
	var p profile.Profile
	u := c.BaseURL + "/v1/members:lookup?type=" + url.QueryEscape(typ) + "&value=" + url.QueryEscape(value)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return p, err
	}
	req.Header.Set("Authorization", "Bearer "+c.ReaderToken)
	resp, err := c.http().Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("lookup answered %d", resp.StatusCode)
	}
	return p, json.NewDecoder(resp.Body).Decode(&p)
}

// Notifications lists what the outbox holds for a member under any of its OneIDs, oldest first.
func Notifications(ctx context.Context, st store.Store, oneIDs ...string) ([]notify.Notification, error) {
	var out []notify.Notification
	for _, oneID := range oneIDs {
		docs, err := st.Query(ctx, store.Query{Collection: member.Outbox, Filters: []store.Filter{{Field: "oneId", Op: store.OpEq, Value: oneID}}})
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			var n notify.Notification
			if err := d.DataTo(&n); err != nil {
				return nil, err
			}
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out, func(a, b notify.Notification) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Summary prints each demo person's profile and notifications.
func Summary(ctx context.Context, c Client, st store.Store, out io.Writer) error {
	for _, person := range People {
		p, err := c.Lookup(ctx, person.Phone)
		if err != nil {
			return fmt.Errorf("look up %s: %w", person.Name, err)
		}
		notes, err := Notifications(ctx, st, append([]string{p.OneID}, p.MergedFrom...)...)
		if err != nil {
			return err
		}
		printMember(out, person, p, notes)
	}
	return nil
}

func yuan(fen int64) string { return fmt.Sprintf("¥%d.%02d", fen/100, fen%100) }

func printMember(out io.Writer, person Person, p profile.Profile, notes []notify.Notification) {
	fmt.Fprintf(out, "\n  %s  %s\n", person.Name, p.OneID)
	fmt.Fprintf(out, "    tier %-8s points %-6d orders %d (net %s)  pool %s  channels %s\n",
		p.Tier.Level, p.Points.Balance, p.Orders.Count, yuan(p.Orders.NetAmountFen), p.Pool, strings.Join(p.Channels, ", "))
	if p.Tier.Next != nil {
		fmt.Fprintf(out, "    %s more in 365 days reaches %s\n", yuan(p.Tier.Next.RemainingFen), p.Tier.Next.Level)
	}
	if len(p.MergedFrom) > 0 {
		fmt.Fprintf(out, "    merged from %s\n", strings.Join(p.MergedFrom, ", "))
	}
	var ids []string
	for _, id := range p.Identities {
		v := id.Value
		if len(v) > 14 {
			v = v[:12] + "…"
		}
		ids = append(ids, id.Type+" "+v)
	}
	fmt.Fprintf(out, "    identities: %s\n", strings.Join(ids, " · "))
	fmt.Fprintf(out, "    notifications (%d):\n", len(notes))
	for _, n := range notes {
		fmt.Fprintf(out, "      • %s\n", n.Text)
	}
}
