package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/omnimember/omnimember/shared/store"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Transactions are optimistic: fn runs outside bbolt's single writer, reading through short
// read-only views and buffering its writes (encoded and indexed there, on any core). The writer
// then only checks that every document the transaction read is unchanged and applies the writes,
// many transactions per commit and fsync. A transaction whose reads changed runs again; after
// optimisticAttempts it runs inside the writer itself, so a hot document cannot starve it.
const optimisticAttempts = 8

// errConflict: a document the transaction read changed before it could commit.
var errConflict = errors.New("transaction conflict")

type docKey struct{ collection, id string }

// tx records what one attempt read (nil: absent) and buffers what it writes.
type tx struct {
	s *Store
	// writer is bbolt's write transaction when the attempt runs inside it; nil reads through views.
	writer *bolt.Tx
	reads  map[docKey][]byte
	writes []write
}

// write is one buffered Set (raw is the new JSON) or Delete (raw nil), with its index values
// computed before it reaches the writer.
type write struct {
	key    docKey
	raw    []byte
	after  map[string][]byte
	before map[string][]byte // index values of beforeOf, the version this transaction read
	// beforeOf is the version before was computed from; nil when the transaction did not read it.
	beforeOf []byte
}

// RunTransaction implements store.Store. fn may run several times: again when a document it read
// changed before its commit, and when it failed on reads that had since changed.
func (s *Store) RunTransaction(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return berrors.ErrDatabaseNotOpen
	}
	for range optimisticAttempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := &tx{s: s, reads: map[docKey][]byte{}}
		if err := fn(ctx, t); err != nil {
			if stale, vErr := s.stale(t.reads); vErr == nil && stale {
				continue // the error may come from a state that no longer holds
			}
			return err
		}
		if len(t.writes) == 0 {
			return nil
		}
		if err := s.submit(&commit{t: t}); !errors.Is(err, errConflict) {
			return err
		}
	}
	return s.submit(&commit{ctx: ctx, fn: fn})
}

// stale reports whether a document among reads has changed since it was read.
func (s *Store) stale(reads map[docKey][]byte) (bool, error) {
	if len(reads) == 0 {
		return false, nil
	}
	var changed bool
	err := s.db.View(func(btx *bolt.Tx) error {
		changed = !unchanged(btx, reads)
		return nil
	})
	return changed, err
}

func unchanged(btx *bolt.Tx, reads map[docKey][]byte) bool {
	for k, seen := range reads {
		cur := get(btx, k)
		if (cur == nil) != (seen == nil) || !bytes.Equal(cur, seen) {
			return false
		}
	}
	return true
}

// document copies a stored document out: bbolt's slice is only valid inside the transaction.
func document(btx *bolt.Tx, k docKey) store.Document {
	doc := store.Document{ID: k.id}
	if v := get(btx, k); v != nil {
		doc.Exists, doc.Data = true, append([]byte(nil), v...)
	}
	return doc
}

func get(btx *bolt.Tx, k docKey) []byte {
	if b := btx.Bucket([]byte(k.collection)); b != nil {
		return b.Get([]byte(k.id))
	}
	return nil
}

func (t *tx) Get(collection, id string, dst any) error { return store.GetOne(t, collection, id, dst) }

func (t *tx) GetAll(collection string, ids []string) ([]store.Document, error) {
	if len(t.writes) > 0 {
		return nil, store.ErrReadAfterWrite
	}
	for _, id := range ids {
		if err := store.CheckNames(collection, id); err != nil {
			return nil, err
		}
	}
	out := make([]store.Document, len(ids))
	err := t.view(func(btx *bolt.Tx) {
		for i, id := range ids {
			out[i] = t.read(btx, docKey{collection, id})
		}
	})
	return out, err
}

// view runs read on the writer's transaction, or on a read-only view that ends with it: no view
// stays open while fn runs, so fn may use the store itself without holding bbolt's remap lock.
func (t *tx) view(read func(btx *bolt.Tx)) error {
	if t.writer != nil {
		read(t.writer)
		return nil
	}
	return t.s.db.View(func(btx *bolt.Tx) error {
		read(btx)
		return nil
	})
}

// read returns the document and remembers the version seen, to be checked at commit.
func (t *tx) read(btx *bolt.Tx, k docKey) store.Document {
	doc := document(btx, k)
	if _, seen := t.reads[k]; !seen {
		t.reads[k] = doc.Data
	}
	return doc
}

func (t *tx) Create(collection, id string, src any) error {
	if err := store.CheckNames(collection, id); err != nil {
		return err
	}
	k := docKey{collection, id}
	exists, written := t.written(k)
	if !written {
		err := t.view(func(btx *bolt.Tx) { exists = t.read(btx, k).Exists })
		if err != nil {
			return err
		}
	}
	if exists {
		return fmt.Errorf("%s/%s: %w", collection, id, store.ErrExists)
	}
	return t.Set(collection, id, src)
}

// written reports whether this transaction already wrote k, and whether that left it existing.
func (t *tx) written(k docKey) (exists, written bool) {
	for i := len(t.writes) - 1; i >= 0; i-- {
		if t.writes[i].key == k {
			return t.writes[i].raw != nil, true
		}
	}
	return false, false
}

func (t *tx) Set(collection, id string, src any) error {
	if err := store.CheckNames(collection, id); err != nil {
		return err
	}
	raw, err := encode(src)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", collection, id, err)
	}
	return t.buffer(docKey{collection, id}, raw)
}

func (t *tx) Delete(collection, id string) error {
	if err := store.CheckNames(collection, id); err != nil {
		return err
	}
	return t.buffer(docKey{collection, id}, nil)
}

func (t *tx) buffer(k docKey, raw []byte) error {
	w := write{key: k, raw: raw}
	var err error
	if w.after, err = t.s.indexValues(k.collection, raw); err != nil {
		return fmt.Errorf("index %s/%s: %w", k.collection, k.id, err)
	}
	if seen, ok := t.reads[k]; ok && seen != nil {
		if w.before, err = t.s.indexValues(k.collection, seen); err != nil {
			return fmt.Errorf("index %s/%s: %w", k.collection, k.id, err)
		}
		w.beforeOf = seen
	}
	t.writes = append(t.writes, w)
	return nil
}

// apply writes the buffered writes into the writer's transaction.
func (s *Store) apply(btx *bolt.Tx, writes []write) error {
	for _, w := range writes {
		b, err := btx.CreateBucketIfNotExists([]byte(w.key.collection))
		if err != nil {
			return err
		}
		id := []byte(w.key.id)
		before := w.before
		if cur := b.Get(id); w.beforeOf == nil || !bytes.Equal(cur, w.beforeOf) {
			if before, err = s.indexValues(w.key.collection, cur); err != nil {
				return fmt.Errorf("index %s/%s: %w", w.key.collection, w.key.id, err)
			}
		}
		if err := s.writeIndex(btx, w.key.collection, w.key.id, before, w.after); err != nil {
			return fmt.Errorf("index %s/%s: %w", w.key.collection, w.key.id, err)
		}
		if w.raw == nil {
			err = b.Delete(id)
		} else {
			err = b.Put(id, w.raw)
		}
		if err != nil {
			return fmt.Errorf("write %s/%s: %w", w.key.collection, w.key.id, err)
		}
	}
	return nil
}
