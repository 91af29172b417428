package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/stream"
)

// Notices is what the event stream says about notifications: the events that ask notify for a
// member-facing message and the outcomes notify reported. The stream may hold an event twice (a
// re-publish after the duplicate window), so everything is keyed by event or notification id.
type Notices struct {
	// Awards maps an order id to the distinct points.awarded events with points for it.
	Awards map[string]map[string]bool
	// Causes are the ids of events that must each yield exactly one member notification.
	Causes map[string]bool
	// Outcomes maps a cause's id to its notifications' ids and their final statuses.
	Outcomes map[string]map[string]map[string]bool
}

// memberTemplates are the templates of the member-facing notifications points and tiers cause.
var memberTemplates = map[string]bool{"points_awarded": true, "tier_upgraded": true, "tier_changed": true}

// ReadNotices reads every points.awarded, tier.changed and notification outcome in the stream.
func ReadNotices(ctx context.Context, js jetstream.JetStream) (*Notices, error) {
	n := &Notices{Awards: map[string]map[string]bool{}, Causes: map[string]bool{}, Outcomes: map[string]map[string]map[string]bool{}}
	subjects := []string{events.Subject(events.PointsAwarded), events.Subject(events.TierChanged),
		events.Subject(events.NotificationSent), events.Subject(events.NotificationFailed), events.Subject(events.NotificationSuppressed)}
	cons, err := js.OrderedConsumer(ctx, stream.Events, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	for left := info.NumPending; left > 0; left-- {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("read notifications (%d left): %w", left, err)
		}
		if err := n.add(msg); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (n *Notices) add(msg jetstream.Msg) error {
	ev, err := cenats.FromMsg(nats.Header(msg.Headers()), msg.Data())
	if err != nil {
		return fmt.Errorf("decode %s: %w", msg.Subject(), err)
	}
	switch ev.Type() {
	case events.PointsAwarded:
		d, err := events.Decode[events.PointsAwardedData](ev)
		if err != nil || d.Points <= 0 {
			return err
		}
		if n.Awards[d.OrderID] == nil {
			n.Awards[d.OrderID] = map[string]bool{}
		}
		n.Awards[d.OrderID][ev.ID()] = true
		n.Causes[ev.ID()] = true
	case events.TierChanged:
		n.Causes[ev.ID()] = true
	default:
		var d events.NotificationOutcomeData
		if err := json.Unmarshal(ev.Data(), &d); err != nil {
			return fmt.Errorf("decode %s %s: %w", ev.Type(), ev.ID(), err)
		}
		if !memberTemplates[d.Template] {
			return nil
		}
		if n.Outcomes[d.SourceID] == nil {
			n.Outcomes[d.SourceID] = map[string]map[string]bool{}
		}
		if n.Outcomes[d.SourceID][d.NotificationID] == nil {
			n.Outcomes[d.SourceID][d.NotificationID] = map[string]bool{}
		}
		n.Outcomes[d.SourceID][d.NotificationID][ev.Type()] = true
	}
	return nil
}

// CheckNotifications counts member notifications lost, doubled or wrong: every order the truth
// says earned points has exactly one award with points, every award and tier change exactly one
// notification, and every notification exactly one outcome, and that outcome is sent.
func (r *Report) CheckNotifications(w *Workload, n *Notices) {
	for _, p := range w.People {
		for _, o := range p.Orders {
			awards := len(n.Awards[o.ID])
			switch {
			case awards == 0 && o.NetFen() >= 100:
				r.Lost++
				r.Problems = append(r.Problems, fmt.Sprintf("%s order %s: no points awarded, want one award", p.Phone, o.ID))
			case awards > 1:
				r.Doubled++
				r.Problems = append(r.Problems, fmt.Sprintf("%s order %s: %d awards with points, want one", p.Phone, o.ID, awards))
			}
		}
	}
	causes := make([]string, 0, len(n.Causes))
	for id := range n.Causes {
		causes = append(causes, id)
	}
	sort.Strings(causes)
	r.Notifications = len(causes)
	for _, cause := range causes {
		r.checkOutcomes(cause, n.Outcomes[cause])
	}
}

func (r *Report) checkOutcomes(cause string, notes map[string]map[string]bool) {
	switch {
	case len(notes) == 0:
		r.Lost++
		r.Problems = append(r.Problems, fmt.Sprintf("event %s: no member notification, want one", cause))
		return
	case len(notes) > 1:
		r.Doubled++
		r.Problems = append(r.Problems, fmt.Sprintf("event %s: %d member notifications, want one", cause, len(notes)))
	}
	for id, outcomes := range notes {
		if len(outcomes) != 1 || !outcomes[events.NotificationSent] {
			r.Wrong++
			r.Problems = append(r.Problems, fmt.Sprintf("notification %s of event %s: outcomes %v, want only sent", id, cause, keys(outcomes)))
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, events.ShortName(k))
	}
	sort.Strings(out)
	return out
}
