package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/broker"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	omruntime "github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/stream"
)

// benchKeyer keys identities as match does.
var benchKeyer = func() *identity.Keyer {
	k, err := identity.ParseKeys(identity.NewKey("bench"))
	if err != nil {
		panic(err)
	}
	return k
}()

// benchPhone is person i's phone.
func benchPhone(i int) string { return fmt.Sprintf("139%08d", i) }

// personIdentities are the five identities every loaded member has.
func personIdentities(i int) []events.Identity {
	ids, _ := identity.NormalizeAll([]events.Identity{{Type: "phone", Value: benchPhone(i)}})
	return append(ids,
		events.Identity{Type: "tmall_omid", Value: fmt.Sprint("omid-", i)},
		events.Identity{Type: "jd_pin", Value: fmt.Sprint("pin-", i)})
}

// loadMembers writes n members with five identities each straight into the store, in large
// transactions, as a bulk backfill would.
func loadMembers(s store.Store, keys *pii.Keyring, n int) error {
	const perTx = 5000
	now := time.Now()
	for start := 0; start < n; start += perTx {
		err := s.RunTransaction(context.Background(), func(_ context.Context, tx store.Tx) error {
			for i := start; i < min(start+perTx, n); i++ {
				if err := writeMember(tx, keys, i, now); err != nil {
					return err
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

func writeMember(tx store.Tx, keys *pii.Keyring, i int, now time.Time) error {
	oneID := member.OneIDFor("bench", fmt.Sprint(i))
	m := member.Member{OneID: oneID, CreatedAt: now, UpdatedAt: now, Channels: []string{"tmall", "jd"}, Pool: member.PoolPlaintext}
	for _, id := range personIdentities(i) {
		f := benchKeyer.Current(id)
		s := member.StoredIdentity{Type: id.Type, Key: f.Key, Value: f.Identity.Value, Channel: "tmall", FirstSeen: now}
		if id.Type == identity.Phone || identity.IsPhoneHash(id.Type) {
			sealed, err := keys.Seal(id.Value, id.Type)
			if err != nil {
				return err
			}
			s.Sealed = sealed
		}
		if id.Type == identity.Phone {
			s.Value, s.Masked = "", identity.MaskPhone(id.Value)
		}
		m.Identities = append(m.Identities, s)
		if err := tx.Set(member.Identities, s.Key, member.IdentityLink{OneID: oneID, Type: id.Type, Since: now}); err != nil {
			return err
		}
	}
	return tx.Set(member.Members, oneID, m)
}

// identityBench loads n members, then measures lookups, resolutions by the handler, and the
// match function draining a backlog from JetStream.
func identityBench(n int) error {
	dir, err := os.MkdirTemp("", "omnimember-bench-identity-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := embedded.Open(filepath.Join(dir, "store.db"), embedded.Options{Indexes: member.Indexes})
	if err != nil {
		return err
	}
	defer s.Close()
	keys, err := pii.ParseKeyring(pii.NewKey("bench"))
	if err != nil {
		return err
	}
	start := time.Now()
	if err := loadMembers(s, keys, n); err != nil {
		return fmt.Errorf("load members: %w", err)
	}
	loaded := time.Since(start)
	fmt.Printf("  %-58s %10.0f members/s  (%d members × 5 identities in %s)\n", "identity: bulk load into the embedded store",
		float64(n)/loaded.Seconds(), n, loaded.Round(time.Millisecond))
	for _, withMember := range []bool{false, true} {
		perSec, err := lookups(s, n, 5*time.Second, withMember)
		if err != nil {
			return err
		}
		what := "identity: lookup by phone → OneID"
		if withMember {
			what += " → member document"
		}
		fmt.Printf("  %-58s %10.0f lookups/s  (bar 100 000)\n", what, perSec)
	}
	h := &match.Handler{Store: s, Keys: keys, Keyer: benchKeyer, Rules: identity.DefaultRules(), Ladder: loyalty.Defaults().Ladder(), Now: time.Now}
	resolved, err := resolveDirect(h, n, 20_000)
	if err != nil {
		return err
	}
	fmt.Printf("  %-58s %10.0f events/s\n", "identity: match handler resolving orders of known members", resolved)
	through, err := resolveThroughJetStream(h, n, 20_000)
	if err != nil {
		return err
	}
	fmt.Printf("  %-58s %10.0f events/s\n", "identity: match function draining a JetStream backlog", through)
	return nil
}

// lookups resolves random phones to OneIDs (and, withMember, reads the member) from all cores.
func lookups(s store.Store, n int, d time.Duration, withMember bool) (float64, error) {
	var done atomic.Int64
	var failed atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range runtime.NumCPU() * 4 {
		wg.Go(func() {
			ctx := context.Background()
			for i := w; time.Now().Before(deadline); i += 7919 {
				phone := events.Identity{Type: identity.Phone, Value: benchPhone(i % n)}
				var link member.IdentityLink
				if err := s.Get(ctx, member.Identities, benchKeyer.Key(phone), &link); err != nil {
					failed.Store(err)
					return
				}
				if withMember {
					var m member.Member
					if err := s.Get(ctx, member.Members, link.OneID, &m); err != nil {
						failed.Store(err)
						return
					}
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, fmt.Errorf("lookup: %w", err)
	}
	return float64(done.Load()) / d.Seconds(), nil
}

// knownOrders are orders by loaded members, each adding one new identity (a WeChat union id).
func knownOrders(n, count int, prefix string) []cloudevents.Event {
	out := make([]cloudevents.Event, count)
	now := time.Now()
	for i := range count {
		person := (i * 7919) % n
		ids := []events.Identity{{Type: "phone", Value: benchPhone(person)}, {Type: "wechat_unionid", Value: fmt.Sprint(prefix, "-", i)}}
		data := events.OrderPaidData{OrderID: fmt.Sprint(prefix, "-", i), Channel: "wechat", ShopID: "app", AmountFen: 9900, PaidAt: now, Identities: ids}
		ev, err := events.New(events.OrderPaid, fmt.Sprint(prefix, "-", i), admit.Source(data.Channel, data.ShopID), now, data)
		if err != nil {
			panic(err)
		}
		out[i] = ev
	}
	return out
}

func resolveDirect(h *match.Handler, n, count int) (float64, error) {
	evs := knownOrders(n, count, "direct")
	work := make(chan cloudevents.Event, len(evs))
	for _, ev := range evs {
		work <- ev
	}
	close(work)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Go(func() {
			for ev := range work {
				if _, err := h.Handle(context.Background(), ev); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, err
	}
	return float64(count) / time.Since(start).Seconds(), nil
}

// resolveThroughJetStream publishes a backlog, then starts match alone and times the drain.
func resolveThroughJetStream(h *match.Handler, n, count int) (float64, error) {
	dir, err := os.MkdirTemp("", "omnimember-bench-match-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	srv, err := broker.Start(broker.Options{Dir: dir})
	if err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("bench-match")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	rt, err := omruntime.New(context.Background(), omruntime.Defaults(), nc, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return 0, err
	}
	evs := knownOrders(n, count, "js")
	if err := rt.Publisher("bench").Publish(context.Background(), nil, evs); err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	start := time.Now()
	go func() { served <- rt.ServeListener(ctx, ln, h.Function()) }()
	defer func() { cancel(); <-served }()
	for {
		c, err := rt.JetStream().Consumer(ctx, stream.Events, match.Name)
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Consumer >= uint64(count) {
				return float64(count) / time.Since(start).Seconds(), nil
			}
		}
		select {
		case err := <-served:
			return 0, fmt.Errorf("match stopped: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
