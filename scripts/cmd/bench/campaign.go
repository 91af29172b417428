package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/campaign"
	"github.com/omnimember/omnimember/shared/broker"
	"github.com/omnimember/omnimember/shared/member"
	omruntime "github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/stream"
)

// campaignBench loads n dormant members (and n/10 recently active ones the segment leaves out),
// counts the dormant segment as the console does, then fans a campaign out to all of them over
// JetStream, on the embedded store.
func campaignBench(n int) error {
	dir, err := os.MkdirTemp("", "omnimember-bench-campaign-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := embedded.Open(filepath.Join(dir, "store.db"), embedded.Options{Indexes: campaign.StoreIndexes(member.Indexes)})
	if err != nil {
		return err
	}
	defer s.Close()
	now := time.Now()
	start := time.Now()
	if err := loadSegmentMembers(s, n, now); err != nil {
		return err
	}
	fmt.Printf("  %-58s %10.0f members/s  (%d members, account, activity for 1 in 11, in %s)\n", "campaign: bulk load of members for segments",
		float64(n+n/10)/time.Since(start).Seconds(), n+n/10, time.Since(start).Round(time.Millisecond))
	h, err := campaignHandler(s)
	if err != nil {
		return err
	}
	dormant, err := h.Segments.Get("dormant")
	if err != nil {
		return err
	}
	start = time.Now()
	count, err := h.Count(context.Background(), dormant.Rule)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if count.Count != n {
		return fmt.Errorf("dormant segment counted %d members, want %d", count.Count, n)
	}
	fmt.Printf("  %-58s %10s  (%d members, sample of %d masked; bar 2 s)\n", "campaign: count the dormant segment (indexed queries)",
		took.Round(time.Millisecond), count.Count, len(count.Sample))
	return fanOutBench(dir, h, n)
}

func campaignHandler(s store.Store) (*campaign.Handler, error) {
	segments, err := segment.Default()
	if err != nil {
		return nil, err
	}
	templates, err := campaign.DefaultTemplates()
	if err != nil {
		return nil, err
	}
	h := &campaign.Handler{Store: s, Segments: segments, Templates: templates, Rates: campaign.Rates{"*": 0},
		Brand: "omnimember", Now: time.Now, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	h.Init()
	return h, nil
}

// fanOutBench times a dormant campaign from its trigger to the last notification.requested stored.
func fanOutBench(dir string, h *campaign.Handler, n int) error {
	srv, err := broker.Start(broker.Options{Dir: filepath.Join(dir, "jetstream")})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("bench-campaign")
	if err != nil {
		return err
	}
	defer nc.Close()
	rt, err := omruntime.New(context.Background(), omruntime.Defaults(), nc, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	ctx := context.Background()
	c, err := h.Create(ctx, campaign.CreateRequest{Name: "bench", Segment: "dormant", Channel: "sms", Template: "winback_coupon",
		Coupon: &campaign.Coupon{Code: "WB", Title: "50元券"}}, "bench")
	if err != nil {
		return err
	}
	pub := rt.Publisher(campaign.Name)
	start := time.Now()
	if err := h.Trigger(ctx, pub, c.ID, "bench"); err != nil {
		return err
	}
	ev, err := events.New(events.CampaignTriggered, c.ID, events.Source(campaign.Name), start, events.CampaignTriggeredData{
		CampaignID: c.ID, Segment: c.Segment, Channel: c.Channel, Template: c.Template, TriggeredBy: "bench", TriggeredAt: start})
	if err != nil {
		return err
	}
	if _, err := h.Handle(ctx, ev); err != nil { // selects the members, as the consumer would
		return err
	}
	selected := time.Since(start)
	if err := h.Send(ctx, pub); err != nil {
		return err
	}
	took := time.Since(start)
	st, err := rt.JetStream().Stream(ctx, stream.Events)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx, jetstreamSubjects(events.NotificationRequested))
	if err != nil {
		return err
	}
	stored := info.State.Subjects[events.NotificationRequested]
	if stored != uint64(n) {
		return fmt.Errorf("fan-out stored %d requests, want %d", stored, n)
	}
	fmt.Printf("  %-58s %10s  (%.0f requests/s; selection %s; bar 60 s)\n", "campaign: fan out to notification.requested (JetStream)",
		took.Round(time.Millisecond), float64(n)/took.Seconds(), selected.Round(time.Millisecond))
	return nil
}

// loadSegmentMembers writes n members with high past spend and no order for 200 days, and n/10
// who interacted yesterday, as match, points-award and profile write them.
func loadSegmentMembers(s store.Store, n int, now time.Time) error {
	const perTx = 10000
	total := n + n/10
	lastOrder := member.IndexTime(now.AddDate(0, 0, -200))
	// Written in id order, as a bulk import would: bbolt appends instead of splitting pages.
	order := make([]int, total)
	ids := make([]string, total)
	for i := range total {
		order[i], ids[i] = i, member.OneIDFor("segment", fmt.Sprint(i))
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(ids[a], ids[b]) })
	for start := 0; start < total; start += perTx {
		err := s.RunTransaction(context.Background(), func(_ context.Context, tx store.Tx) error {
			for _, i := range order[start:min(start+perTx, total)] {
				id := ids[i]
				m := member.Member{OneID: id, Pool: member.PoolPlaintext, Channels: []string{"tmall", "jd"},
					Identities: []member.StoredIdentity{{Type: "phone", Key: id, Masked: fmt.Sprintf("139****%04d", i%10000), Channel: "tmall"}}}
				if err := tx.Set(member.Members, id, m); err != nil {
					return err
				}
				a := member.Account{OneID: id, OrderCount: 3, NetAmountFen: 150000 + int64(i%1000), LastOrderAt: &lastOrder}
				if err := tx.Set(member.Accounts, id, a); err != nil {
					return err
				}
				if i >= n {
					act := member.Activity{OneID: id}
					act.Record(now.Add(-24*time.Hour), now)
					if err := tx.Set(member.Activities, id, act); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func jetstreamSubjects(subject string) jetstream.StreamInfoOpt {
	return jetstream.WithSubjectFilter(subject)
}
