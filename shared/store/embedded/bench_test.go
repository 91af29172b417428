package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/omnimember/omnimember/shared/store"
)

// BenchmarkTransaction runs read-modify-write transactions from parallel goroutines, as the
// functions do, so the store's writer commits them together (one fsync for all that wait).
func BenchmarkTransaction(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("nosync=%v", noSync), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			b.SetParallelism(32)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("doc-%d", n.Add(1)%5000)
					err := s.RunTransaction(context.Background(), func(_ context.Context, tx store.Tx) error {
						var doc map[string]any
						_ = tx.Get("bench", id, &doc)
						return tx.Set("bench", id, map[string]any{"balance": n.Load(), "oneId": id})
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
