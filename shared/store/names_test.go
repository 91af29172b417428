package store

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The patterns the byte checks implement; compiled here only, never at a function's start.
var (
	collectionPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	documentPattern   = regexp.MustCompile(`^[A-Za-z0-9_.:@+=-]{1,512}$`)
)

func TestNameChecksMatchTheirPatterns(t *testing.T) {
	names := []string{"", "a", "members", "receipts", "Members", "9lives", "a-b_c", "a b", "a/b", "é",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "om_abc:1@x+y=z.w-", "..", "a\x00", "tmall/123",
		strings.Repeat("x", 512), strings.Repeat("x", 513), "ABC", "a\n"}
	for _, n := range names {
		assert.Equal(t, collectionPattern.MatchString(n), validCollection(n), "collection %q: got, want", n)
		assert.Equal(t, documentPattern.MatchString(n), validDocumentID(n), "document id %q: got, want", n)
	}
}

func FuzzNameChecksMatchTheirPatterns(f *testing.F) {
	for _, seed := range []string{"members", "om_abc:1@x+y=z.w-", "a b", "", strings.Repeat("x", 513)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, n string) {
		if got, want := validCollection(n), collectionPattern.MatchString(n); got != want {
			t.Fatalf("collection %q: got %v, want %v", n, got, want)
		}
		if got, want := validDocumentID(n), documentPattern.MatchString(n); got != want {
			t.Fatalf("document id %q: got %v, want %v", n, got, want)
		}
	})
}
