package events

import "testing"

func BenchmarkValidate(b *testing.B) {
	ev, err := Example(OrderPaid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(ev); err != nil {
			b.Fatal(err)
		}
	}
}
