package identity

import (
	"testing"

	"github.com/omnimember/omnimember/events"
)

func BenchmarkNormalizeAll(b *testing.B) {
	ids := []events.Identity{{Type: "phone", Value: "+86 138-1234-5678"}, {Type: "tmall_ouid", Value: "AAF3", Scope: "shop-1"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NormalizeAll(ids); err != nil {
			b.Fatal(err)
		}
	}
}
