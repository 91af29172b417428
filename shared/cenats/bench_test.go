package cenats

import (
	"testing"

	"github.com/omnimember/omnimember/events"
)

func BenchmarkRoundTrip(b *testing.B) {
	ev, err := events.Example(events.OrderPaid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		msg, err := ToMsg(events.OrderPaid, ev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := FromMsg(msg.Header, msg.Data); err != nil {
			b.Fatal(err)
		}
	}
}
