package profile

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Consumes lists what the profile records itself: interactions (orders, points and tiers it reads
// from the functions that own them).
var Consumes = []string{events.IdentityResolved}

// Emits lists what the profile publishes: members Tmall's 会员通 registers through its SPI.
var Emits = []string{events.MemberRegistered}

// Handle records an interaction under the member it resolved to; other sources are not its to keep.
// Counts are added once per event (a receipt in the same transaction).
func (a *API) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	d, err := events.Decode[events.IdentityResolvedData](ev)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	if d.Interaction == nil {
		return nil, nil
	}
	runtime.SetOneID(ctx, d.OneID)
	in := *d.Interaction
	return receipt.Once(ctx, a.Store, Name, ev, a.Now, func(tx store.Tx) ([]cloudevents.Event, error) {
		act := member.Activity{OneID: d.OneID, ByChannel: map[string]*member.ChannelActivity{}}
		if err := tx.Get(member.Activities, d.OneID, &act); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("read activity of %s: %w", d.OneID, err)
		}
		ch := act.ByChannel[in.Channel]
		if ch == nil {
			ch = &member.ChannelActivity{Kinds: map[string]int64{}}
			act.ByChannel[in.Channel] = ch
		}
		ch.Count++
		ch.Kinds[in.Kind]++
		if in.OccurredAt.After(ch.LastAt) {
			ch.LastAt = in.OccurredAt.UTC()
		}
		act.Record(in.OccurredAt, a.Now())
		return nil, tx.Set(member.Activities, d.OneID, act)
	})
}

// InteractionsView sums a member's interactions over all its OneIDs.
type InteractionsView struct {
	Count        int64                             `json:"count"`
	LastActiveAt *time.Time                        `json:"lastActiveAt,omitempty"`
	ByChannel    map[string]member.ChannelActivity `json:"byChannel"`
}

func (a *API) interactions(ctx context.Context, oneIDs []string) (InteractionsView, error) {
	v := InteractionsView{ByChannel: map[string]member.ChannelActivity{}}
	for _, id := range oneIDs {
		var act member.Activity
		if err := a.Store.Get(ctx, member.Activities, id, &act); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return v, err
		}
		for name, ch := range act.ByChannel {
			sum := v.ByChannel[name]
			if sum.Kinds == nil {
				sum.Kinds = map[string]int64{}
			}
			sum.Count += ch.Count
			for k, n := range ch.Kinds {
				sum.Kinds[k] += n
			}
			if ch.LastAt.After(sum.LastAt) {
				sum.LastAt = ch.LastAt
			}
			v.ByChannel[name] = sum
			v.Count += ch.Count
			if v.LastActiveAt == nil || ch.LastAt.After(*v.LastActiveAt) {
				last := ch.LastAt
				v.LastActiveAt = &last
			}
		}
	}
	return v, nil
}
