package embedded

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/omnimember/omnimember/shared/store"
	bolt "go.etcd.io/bbolt"
)

// An index keeps, per (collection, field), keys `escaped value | 0x00 0x01 | document id` in its
// own bucket (0x00 inside a value is escaped as 0x00 0xFF, so byte order stays value order), so equality and range filters read only the documents they can match. Every query still
// checks each document against all its filters: an index only narrows.

const indexPrefix = "_idx/"

func indexBucket(collection, field string) []byte {
	return []byte(indexPrefix + collection + "/" + field)
}

// encodeValue encodes a decoded JSON scalar so that byte order is value order within a kind:
// numbers as order-preserving float64 bits, strings as their bytes, bools as 0/1. Other kinds
// (objects, arrays, null) are not indexed.
func encodeValue(v any) ([]byte, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, false
		}
		bits := math.Float64bits(f)
		if f >= 0 {
			bits ^= 1 << 63
		} else {
			bits = ^bits
		}
		out := make([]byte, 9)
		out[0] = 'n'
		binary.BigEndian.PutUint64(out[1:], bits)
		return out, true
	case string:
		return append([]byte{'s'}, x...), true
	case bool:
		if x {
			return []byte{'b', 1}, true
		}
		return []byte{'b', 0}, true
	}
	return nil, false
}

var terminator = []byte{0, 1}

// escape doubles 0x00 as 0x00 0xFF so the terminator cannot occur inside a value.
func escape(value []byte) []byte {
	return bytes.ReplaceAll(value, []byte{0}, []byte{0, 0xFF})
}

func indexKey(value []byte, id string) []byte {
	k := make([]byte, 0, len(value)+2+len(id))
	k = append(append(k, escape(value)...), terminator...)
	return append(k, id...)
}

// splitKey returns an index key's escaped value and document id.
func splitKey(k []byte) ([]byte, string) {
	i := bytes.Index(k, terminator)
	if i < 0 {
		return k, ""
	}
	return k[:i], string(k[i+2:])
}

// indexValues returns a document's encoded value for each indexed field it has (none for nil).
func (s *Store) indexValues(collection string, raw []byte) (map[string][]byte, error) {
	fields := s.indexes[collection]
	if len(fields) == 0 || raw == nil {
		return nil, nil
	}
	out := make(map[string][]byte, len(fields))
	for _, f := range fields {
		enc, ok, err := indexValue(raw, f)
		if err != nil {
			return nil, err
		}
		if ok {
			out[f] = enc
		}
	}
	return out, nil
}

// indexValue returns the encoded value of the field f (a dotted path) of the document raw, and
// false when the document lacks it or its kind is not indexed.
func indexValue(raw []byte, f string) ([]byte, bool, error) {
	value, found, err := lookup(raw, f)
	if err == nil && !found {
		return nil, false, nil
	}
	var v any
	if err == nil {
		v, err = scalar(value)
	}
	if err != nil { // not the store's own encoding: decode it whole, as queries do
		decoded, err := decodeJSON(raw)
		if err != nil {
			return nil, false, err
		}
		if v, found = field(decoded, strings.Split(f, ".")); !found {
			return nil, false, nil
		}
	}
	enc, ok := encodeValue(v)
	return enc, ok, nil
}

// writeIndex moves a document's index entries from its values before to its values after.
func (s *Store) writeIndex(btx *bolt.Tx, collection, id string, before, after map[string][]byte) error {
	for _, f := range s.indexes[collection] {
		old, ok := before[f]
		now, has := after[f]
		if ok == has && bytes.Equal(old, now) {
			continue
		}
		b, err := btx.CreateBucketIfNotExists(indexBucket(collection, f))
		if err != nil {
			return err
		}
		if ok {
			if err := b.Delete(indexKey(old, id)); err != nil {
				return err
			}
		}
		if has {
			if err := b.Put(indexKey(now, id), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// buildIndexes fills the index buckets of documents written before the index was declared.
func (s *Store) buildIndexes() error {
	return s.db.Update(func(btx *bolt.Tx) error {
		for collection, fields := range s.indexes {
			for _, f := range fields {
				if btx.Bucket(indexBucket(collection, f)) != nil {
					continue
				}
				if _, err := btx.CreateBucket(indexBucket(collection, f)); err != nil {
					return err
				}
				docs := btx.Bucket([]byte(collection))
				if docs == nil {
					continue
				}
				if err := docs.ForEach(func(k, v []byte) error {
					return s.reindexField(btx, collection, f, string(k), v)
				}); err != nil {
					return fmt.Errorf("build index %s.%s: %w", collection, f, err)
				}
			}
		}
		return nil
	})
}

func (s *Store) reindexField(btx *bolt.Tx, collection, f, id string, raw []byte) error {
	enc, ok, err := indexValue(raw, f)
	if err != nil || !ok {
		return err
	}
	return btx.Bucket(indexBucket(collection, f)).Put(indexKey(enc, id), nil)
}

// candidates returns the ids an index says may match, and false when no filter has an index.
// Equality filters are preferred: they read the narrowest range.
func (s *Store) candidates(btx *bolt.Tx, q store.Query, filters []compiledFilter) ([]string, bool) {
	var chosen *compiledFilter
	for i, f := range filters {
		path := strings.Join(f.path, ".")
		if !s.indexed(q.Collection, path) {
			continue
		}
		if chosen == nil || (f.op == store.OpEq && chosen.op != store.OpEq) {
			chosen = &filters[i]
		}
	}
	if chosen == nil {
		return nil, false
	}
	enc, ok := encodeValue(chosen.value)
	if !ok {
		return []string{}, true // nothing indexed can equal or order against this value
	}
	b := btx.Bucket(indexBucket(q.Collection, strings.Join(chosen.path, ".")))
	if b == nil {
		return []string{}, true
	}
	return scanIndex(b.Cursor(), enc, chosen.op), true
}

// scanIndex walks the part of the index the operator selects, staying within the value's kind.
func scanIndex(c *bolt.Cursor, enc []byte, op string) []string {
	kind, want := enc[:1], escape(enc)
	var ids idList
	var k []byte
	switch op {
	case store.OpEq, store.OpGte, store.OpGt:
		k, _ = c.Seek(want)
	default:
		k, _ = c.Seek(kind)
	}
	for ; k != nil && bytes.HasPrefix(k, kind); k, _ = c.Next() {
		i := bytes.Index(k, terminator)
		if i < 0 {
			continue
		}
		value, id := k[:i], k[i+2:]
		cmp := bytes.Compare(value, want)
		switch {
		case op == store.OpEq && cmp != 0:
			return ids.all()
		case (op == store.OpLt && cmp >= 0) || (op == store.OpLte && cmp > 0):
			return ids.all()
		case op == store.OpGt && cmp == 0:
			continue
		}
		ids.add(id)
	}
	return ids.all()
}

// idList gathers ids without an allocation per id: their bytes go into a block that becomes one
// string when full, each id a substring of it; the ids are joined once at the end. A scan of a
// million ids then makes hundreds of objects for the collector, not millions.
type idList struct {
	blocks [][]string
	buf    []byte
	ends   []int
	count  int
}

const idBlock = 64 << 10

func (l *idList) add(id []byte) {
	if len(l.buf)+len(id) > cap(l.buf) {
		l.flush()
		l.buf = make([]byte, 0, max(idBlock, len(id)))
	}
	l.buf = append(l.buf, id...)
	l.ends = append(l.ends, len(l.buf))
	l.count++
}

func (l *idList) flush() {
	if len(l.ends) == 0 {
		return
	}
	block, start := string(l.buf), 0
	ids := make([]string, len(l.ends))
	for i, end := range l.ends {
		ids[i], start = block[start:end], end
	}
	l.blocks = append(l.blocks, ids)
	l.buf, l.ends = l.buf[:0], l.ends[:0]
}

func (l *idList) all() []string {
	l.flush()
	if len(l.blocks) == 1 {
		return l.blocks[0]
	}
	out := make([]string, 0, l.count)
	for _, b := range l.blocks {
		out = append(out, b...)
	}
	return out
}

func (s *Store) indexed(collection, path string) bool {
	for _, f := range s.indexes[collection] {
		if f == path {
			return true
		}
	}
	return false
}
