package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnimember/omnimember/shared/stream"
)

// Quiesce waits until every chained function's consumer has acknowledged everything in the stream,
// three checks in a row a second apart (a redelivery in flight shows up in between).
func (c *Cluster) Quiesce(ctx context.Context) error {
	js, closeConn, err := c.jetStream()
	if err != nil {
		return err
	}
	defer closeConn()
	for calm := 0; calm < 3; {
		all := true
		for _, f := range Chained {
			ok, err := stream.Settled(ctx, js, stream.Events, f)
			if err != nil {
				return fmt.Errorf("consumer %s: %w", f, err)
			}
			all = all && ok
		}
		if all {
			calm++
		} else {
			calm = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not quiet: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
	return nil
}

// DeadLetters counts events a function gave up on: each is an effect lost.
func (c *Cluster) DeadLetters(ctx context.Context) (int, error) {
	js, closeConn, err := c.jetStream()
	if err != nil {
		return 0, err
	}
	defer closeConn()
	dead, err := stream.ListDeadLetters(ctx, js, "")
	return len(dead), err
}

// Notices reads what the stream says about member notifications.
func (c *Cluster) Notices(ctx context.Context) (*Notices, error) {
	js, closeConn, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	defer closeConn()
	return ReadNotices(ctx, js)
}

// jetStream connects the harness itself to the cluster's nats-server, riding out its restarts.
func (c *Cluster) jetStream() (jetstream.JetStream, func(), error) {
	nc, err := nats.Connect(c.NATSURL, nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// Truth is what one person's profile must say, worked out from the generated orders alone with
// MISSION §5's default rules (1 yuan = 1 point per order on its net amount; the default ladder).
type Truth struct {
	Points, Orders, NetFen int64
	// Tiers are upgraded at once and downgraded only on the evaluation day, so a refund that arrives
	// after its order leaves the higher level: the level lies between these two.
	LowestTier, HighestTier string
}

var ladder = []struct {
	name string
	min  int64
}{{"member", 0}, {"silver", 100_000}, {"gold", 300_000}, {"platinum", 800_000}, {"diamond", 2_000_000}}

func levelFor(fen int64) int {
	level := 0
	for i, l := range ladder {
		if fen >= l.min {
			level = i
		}
	}
	return level
}

// TruthFor computes a person's expected profile.
func TruthFor(p *Person) Truth {
	var t Truth
	var gross int64
	for _, o := range p.Orders {
		t.Orders++
		t.NetFen += o.NetFen()
		t.Points += o.NetFen() / 100
		gross += o.PaidFen
	}
	t.LowestTier, t.HighestTier = ladder[levelFor(t.NetFen)].name, ladder[levelFor(gross)].name
	return t
}

// profile is the part of the profile API's answer the harness checks.
type profile struct {
	OneID  string `json:"oneId"`
	Points struct {
		Balance int64 `json:"balance"`
	} `json:"points"`
	Tier struct {
		Level string `json:"level"`
	} `json:"tier"`
	Orders struct {
		Count        int64 `json:"count"`
		NetAmountFen int64 `json:"netAmountFen"`
	} `json:"orders"`
}

// Report is the verdict: every effect lost, doubled or wrong, per person.
type Report struct {
	People, Notifications, Lost, Doubled, Wrong, DeadLetters int
	Problems                                                 []string
}

// OK is true when nothing was lost, doubled or wrong.
func (r Report) OK() bool { return r.Lost+r.Doubled+r.Wrong+r.DeadLetters == 0 }

// Verify reads every person's profile through the profile function and compares it with the truth.
func Verify(ctx context.Context, profileAddr, readerToken string, w *Workload) (Report, error) {
	var r Report
	for _, p := range w.People {
		got, err := lookup(ctx, profileAddr, readerToken, p.Phone)
		if err != nil {
			return r, err
		}
		r.People++
		r.compare(p.Phone, got, TruthFor(p))
	}
	return r, nil
}

func (r *Report) compare(phone string, got profile, want Truth) {
	count := func(what string, g, w int64) {
		switch {
		case g < w:
			r.Lost++
		case g > w:
			r.Doubled++
		default:
			return
		}
		r.Problems = append(r.Problems, fmt.Sprintf("%s (%s) %s: got %d, want %d", phone, got.OneID, what, g, w))
	}
	count("points", got.Points.Balance, want.Points)
	count("orders", got.Orders.Count, want.Orders)
	count("net spend (fen)", got.Orders.NetAmountFen, want.NetFen)
	level := -1
	for i, l := range ladder {
		if l.name == got.Tier.Level {
			level = i
		}
	}
	if level < 0 || level < indexOf(want.LowestTier) || level > indexOf(want.HighestTier) {
		r.Wrong++
		r.Problems = append(r.Problems, fmt.Sprintf("%s (%s) tier: got %q, want %s..%s", phone, got.OneID, got.Tier.Level, want.LowestTier, want.HighestTier))
	}
}

func indexOf(level string) int {
	for i, l := range ladder {
		if l.name == level {
			return i
		}
	}
	return -1
}

func lookup(ctx context.Context, addr, readerToken, phone string) (profile, error) {
	var p profile
	u := "http://" + addr + "/v1/members:lookup?type=phone&value=" + url.QueryEscape(phone)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return p, err
	}
	req.Header.Set("Authorization", "Bearer "+readerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return p, nil // nothing of theirs arrived: every effect lost, the comparison says so
	}
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("lookup %s: %s", phone, resp.Status)
	}
	return p, json.NewDecoder(resp.Body).Decode(&p)
}
