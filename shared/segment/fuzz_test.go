package segment

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzRule decodes arbitrary JSON as a rule: validation names a field or accepts it, never panics,
// and an accepted rule stays accepted after a round trip.
func FuzzRule(f *testing.F) {
	f.Add([]byte(`{"tiers":["gold"],"pool":"plaintext"}`))
	f.Add([]byte(`{"spendFen":{"days":30,"min":50001},"interactions":{"days":30,"min":10}}`))
	f.Add([]byte(`{"daysSinceLastOrder":{"min":180,"max":90}}`))
	f.Add([]byte(`{"points":{}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r Rule
		if json.Unmarshal(raw, &r) != nil {
			return
		}
		err := r.Validate()
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error %v names no field", err)
			}
			return
		}
		again, _ := json.Marshal(r)
		var r2 Rule
		if err := json.Unmarshal(again, &r2); err != nil || r2.Validate() != nil {
			t.Fatalf("a valid rule %s no longer validates after a round trip", again)
		}
	})
}

// FuzzParse reads arbitrary segments files without panicking.
func FuzzParse(f *testing.F) {
	f.Add(defaultFile)
	f.Add([]byte("version: x\nsegments:\n  a:\n    title: A\n    rule: {pool: plaintext}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(raw)
		if err == nil && len(c.All()) == 0 {
			t.Fatal("a parsed catalog has no segments")
		}
	})
}
