package match

import (
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
)

// source is the decoded event match resolves: its identities, its channel, and a way to re-emit
// its data with cleaned identities.
type source struct {
	identities []events.Identity
	channel    string
	occurred   time.Time
	resolved   func(safe []events.Identity) events.IdentityResolvedData
}

func decode(ev cloudevents.Event) (source, error) {
	switch ev.Type() {
	case events.OrderPaid:
		d, err := events.Decode[events.OrderPaidData](ev)
		return source{d.Identities, d.Channel, d.PaidAt, func(safe []events.Identity) events.IdentityResolvedData {
			d.Identities = safe
			return events.IdentityResolvedData{Identities: safe, Order: &d}
		}}, err
	case events.OrderRefunded:
		d, err := events.Decode[events.OrderRefundedData](ev)
		return source{d.Identities, d.Channel, d.RefundedAt, func(safe []events.Identity) events.IdentityResolvedData {
			d.Identities = safe
			return events.IdentityResolvedData{Identities: safe, Refund: &d}
		}}, err
	case events.MemberRegistered:
		d, err := events.Decode[events.MemberRegisteredData](ev)
		return source{d.Identities, d.Channel, d.RegisteredAt, func(safe []events.Identity) events.IdentityResolvedData {
			d.Identities = safe
			return events.IdentityResolvedData{Identities: safe, Registration: &d}
		}}, err
	case events.InteractionRecorded:
		d, err := events.Decode[events.InteractionRecordedData](ev)
		return source{d.Identities, d.Channel, d.OccurredAt, func(safe []events.Identity) events.IdentityResolvedData {
			d.Identities = safe
			return events.IdentityResolvedData{Identities: safe, Interaction: &d}
		}}, err
	}
	return source{}, fmt.Errorf("match does not resolve %s events", ev.Type())
}
