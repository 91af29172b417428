// Package embedded is the default document store: one bbolt file on local disk, crash-safe.
package embedded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/omnimember/omnimember/shared/store"
	bolt "go.etcd.io/bbolt"
)

// Options tune the embedded store.
type Options struct {
	// NoSync skips fsync on commit: a process crash loses nothing (the OS holds the pages),
	// an OS crash may lose the last commits. Off by default.
	NoSync bool
	// Indexes names, per collection, the fields (dotted paths) equality and range queries use.
	// Declaring an index on an existing store builds it at open.
	Indexes map[string][]string
}

// Store keeps each collection in a bbolt bucket of JSON documents, with optional field indexes.
type Store struct {
	db      *bolt.DB
	indexes map[string][]string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store file at path.
func Open(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open embedded store %s: %w", path, err)
	}
	db.NoSync = opts.NoSync
	// Concurrent transactions are committed together: one fsync for up to MaxBatchSize of them.
	db.MaxBatchDelay = 2 * time.Millisecond
	db.MaxBatchSize = 512
	s := &Store{db: db, indexes: opts.Indexes}
	for collection := range opts.Indexes {
		if err := store.CheckNames(collection, "x"); err != nil {
			db.Close()
			return nil, fmt.Errorf("index on %w", err)
		}
	}
	if err := s.buildIndexes(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Get implements store.Store.
func (s *Store) Get(_ context.Context, collection, id string, dst any) error {
	if err := store.CheckNames(collection, id); err != nil {
		return err
	}
	var doc store.Document
	err := s.db.View(func(btx *bolt.Tx) error {
		doc = read(btx, collection, id)
		return nil
	})
	if err != nil {
		return err
	}
	if !doc.Exists {
		return fmt.Errorf("%s/%s: %w", collection, id, store.ErrNotFound)
	}
	return doc.DataTo(dst)
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, collection, id string, src any) error {
	return s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error { return tx.Set(collection, id, src) })
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, collection, id string) error {
	return s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error { return tx.Delete(collection, id) })
}

// RunTransaction implements store.Store. bbolt runs one writer at a time, so a transaction never
// conflicts; concurrent callers are batched into one commit (fn may then run more than once).
func (s *Store) RunTransaction(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Batch(func(btx *bolt.Tx) error {
		return fn(ctx, &tx{btx: btx, s: s})
	})
}

// Query implements store.Store by scanning the collection's bucket.
func (s *Store) Query(_ context.Context, q store.Query) ([]store.Document, error) {
	if err := store.CheckQuery(q); err != nil {
		return nil, err
	}
	filters, err := compileFilters(q.Filters)
	if err != nil {
		return nil, err
	}
	var out []store.Document
	err = s.db.View(func(btx *bolt.Tx) error {
		b := btx.Bucket([]byte(q.Collection))
		if b == nil {
			return nil
		}
		keep := func(k, v []byte) error {
			ok, err := matches(v, filters, q.OrderBy)
			if err != nil {
				return fmt.Errorf("query %s: document %s: %w", q.Collection, k, err)
			}
			if ok {
				out = append(out, store.Document{ID: string(k), Exists: true, Data: append([]byte(nil), v...)})
			}
			return nil
		}
		ids, indexed := s.candidates(btx, q, filters)
		if !indexed {
			return b.ForEach(keep)
		}
		for _, id := range ids {
			if v := b.Get([]byte(id)); v != nil {
				if err := keep([]byte(id), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return orderAndLimit(out, q)
}

type tx struct {
	btx   *bolt.Tx
	s     *Store
	wrote bool
}

func read(btx *bolt.Tx, collection, id string) store.Document {
	doc := store.Document{ID: id}
	if b := btx.Bucket([]byte(collection)); b != nil {
		if v := b.Get([]byte(id)); v != nil {
			// bbolt's slice is only valid inside the transaction.
			doc.Exists, doc.Data = true, append([]byte(nil), v...)
		}
	}
	return doc
}

func (t *tx) Get(collection, id string, dst any) error {
	docs, err := t.GetAll(collection, []string{id})
	if err != nil {
		return err
	}
	if !docs[0].Exists {
		return fmt.Errorf("%s/%s: %w", collection, id, store.ErrNotFound)
	}
	return docs[0].DataTo(dst)
}

func (t *tx) GetAll(collection string, ids []string) ([]store.Document, error) {
	if t.wrote {
		return nil, store.ErrReadAfterWrite
	}
	out := make([]store.Document, len(ids))
	for i, id := range ids {
		if err := store.CheckNames(collection, id); err != nil {
			return nil, err
		}
		out[i] = read(t.btx, collection, id)
	}
	return out, nil
}

func (t *tx) Create(collection, id string, src any) error {
	if err := store.CheckNames(collection, id); err != nil {
		return err
	}
	if read(t.btx, collection, id).Exists {
		return fmt.Errorf("%s/%s: %w", collection, id, store.ErrExists)
	}
	return t.Set(collection, id, src)
}

func (t *tx) Set(collection, id string, src any) error {
	if err := store.CheckNames(collection, id); err != nil {
		return err
	}
	raw, err := encode(src)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", collection, id, err)
	}
	t.wrote = true
	b, err := t.btx.CreateBucketIfNotExists([]byte(collection))
	if err != nil {
		return err
	}
	if err := t.s.reindex(t.btx, collection, id, b.Get([]byte(id)), raw); err != nil {
		return fmt.Errorf("index %s/%s: %w", collection, id, err)
	}
	return b.Put([]byte(id), raw)
}

func (t *tx) Delete(collection, id string) error {
	if err := store.CheckNames(collection, id); err != nil {
		return err
	}
	t.wrote = true
	b := t.btx.Bucket([]byte(collection))
	if b == nil {
		return nil
	}
	if err := t.s.reindex(t.btx, collection, id, b.Get([]byte(id)), nil); err != nil {
		return fmt.Errorf("index %s/%s: %w", collection, id, err)
	}
	return b.Delete([]byte(id))
}
