package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/omnimember/omnimember/shared/store"
	bolt "go.etcd.io/bbolt"
)

type compiledFilter struct {
	path  []string
	op    string
	value any
}

// encode turns a Go value into the JSON a document holds; documents must be JSON objects.
func encode(src any) ([]byte, error) {
	raw, err := json.Marshal(src)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("a document must encode to a JSON object, got %.20s", raw)
	}
	return raw, nil
}

// canonical brings a filter value to the form decoded documents have (json.Number, string, bool).
func canonical(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(raw)
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func compileFilters(filters []store.Filter) ([]compiledFilter, error) {
	out := make([]compiledFilter, len(filters))
	for i, f := range filters {
		v, err := canonical(f.Value)
		if err != nil {
			return nil, fmt.Errorf("filter on %s: %w", f.Field, err)
		}
		out[i] = compiledFilter{path: strings.Split(f.Field, "."), op: f.Op, value: v}
	}
	return out, nil
}

func field(doc any, path []string) (any, bool) {
	for _, p := range path {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, false
		}
		if doc, ok = m[p]; !ok {
			return nil, false
		}
	}
	return doc, true
}

// matches applies Firestore's rules: a document lacking a filtered or ordered field never matches,
// and values of different kinds never compare.
func matches(raw []byte, filters []compiledFilter, orderBy string) (bool, error) {
	if len(filters) == 0 && orderBy == "" {
		return true, nil
	}
	doc, err := decodeJSON(raw)
	if err != nil {
		return false, err
	}
	if orderBy != "" {
		if _, ok := field(doc, strings.Split(orderBy, ".")); !ok {
			return false, nil
		}
	}
	for _, f := range filters {
		got, ok := field(doc, f.path)
		if !ok {
			return false, nil
		}
		c, comparable := compare(got, f.value)
		if !comparable || !satisfies(c, f.op) {
			return false, nil
		}
	}
	return true, nil
}

func satisfies(c int, op string) bool {
	switch op {
	case store.OpEq:
		return c == 0
	case store.OpLt:
		return c < 0
	case store.OpLte:
		return c <= 0
	case store.OpGt:
		return c > 0
	case store.OpGte:
		return c >= 0
	}
	return false
}

func compare(a, b any) (int, bool) {
	switch av := a.(type) {
	case json.Number:
		bv, ok := b.(json.Number)
		if !ok {
			return 0, false
		}
		return compareNumbers(av, bv), true
	case string:
		bv, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(av, bv), true
	case bool:
		bv, ok := b.(bool)
		if !ok {
			return 0, false
		}
		if av == bv {
			return 0, true
		}
		if !av {
			return -1, true
		}
		return 1, true
	case nil:
		return 0, b == nil
	}
	return 0, false
}

func compareNumbers(a, b json.Number) int {
	ai, aerr := a.Int64()
	bi, berr := b.Int64()
	if aerr == nil && berr == nil {
		return cmpOrdered(ai, bi)
	}
	af, _ := a.Float64()
	bf, _ := b.Float64()
	return cmpOrdered(af, bf)
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func orderAndLimit(docs []store.Document, q store.Query) ([]store.Document, error) {
	if q.OrderBy != "" {
		path := strings.Split(q.OrderBy, ".")
		keys := make(map[string]any, len(docs))
		for _, d := range docs {
			v, err := decodeJSON(d.Data)
			if err != nil {
				return nil, err
			}
			keys[d.ID], _ = field(v, path)
		}
		slices.SortStableFunc(docs, func(x, y store.Document) int {
			c, _ := compare(keys[x.ID], keys[y.ID])
			if c == 0 {
				c = strings.Compare(x.ID, y.ID)
			}
			if q.Descending {
				return -c
			}
			return c
		})
	}
	if q.Limit > 0 && len(docs) > q.Limit {
		docs = docs[:q.Limit]
	}
	return docs, nil
}

// QueryIDs implements store.IDQuerier: a query of one filter on an indexed field, unordered and
// unlimited, is answered from the index without reading a document; others run as Query.
func (s *Store) QueryIDs(ctx context.Context, q store.Query) ([]string, error) {
	if err := store.CheckQuery(q); err != nil {
		return nil, err
	}
	if len(q.Filters) != 1 || q.OrderBy != "" || q.Limit > 0 || !s.indexed(q.Collection, q.Filters[0].Field) {
		return store.QueryIDs(ctx, queryOnly{s}, q)
	}
	filters, err := compileFilters(q.Filters)
	if err != nil {
		return nil, err
	}
	var ids []string
	err = s.db.View(func(btx *bolt.Tx) error {
		ids, _ = s.candidates(btx, q, filters)
		return nil
	})
	return ids, err
}

// queryOnly hides QueryIDs so the fallback runs Query.
type queryOnly struct{ s *Store }

func (q queryOnly) Query(ctx context.Context, query store.Query) ([]store.Document, error) {
	return q.s.Query(ctx, query)
}
