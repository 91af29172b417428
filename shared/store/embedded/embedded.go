// Package embedded is the default document store: one bbolt file on local disk, crash-safe.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	// Expire names, per collection, a top-level time field after which a document is deleted (what
	// a Firestore TTL policy does); the field is indexed. Swept at open and every ExpireEvery.
	Expire map[string]string
	// ExpireEvery is the sweep interval: an hour when zero; negative turns the background sweep off.
	ExpireEvery time.Duration
	// Logger reports the sweeps (slog.Default when nil).
	Logger *slog.Logger
}

// Store keeps each collection in a bbolt bucket of JSON documents, with optional field indexes.
type Store struct {
	db      *bolt.DB
	indexes map[string][]string
	expire  map[string]string
	// stopExpiry ends the background sweep; swept is done once it has.
	stopExpiry context.CancelFunc
	swept      sync.WaitGroup
	commits    chan *commit
	stopped    chan struct{}
	// mu is held for reading by every transaction and for writing by Close, which so waits for them.
	mu     sync.RWMutex
	closed bool
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
	s := &Store{db: db, indexes: withExpiryIndexes(opts.Indexes, opts.Expire), expire: opts.Expire,
		commits: make(chan *commit, maxBatch), stopped: make(chan struct{}), stopExpiry: func() {}}
	for collection := range s.indexes {
		if err := store.CheckNames(collection, "x"); err != nil {
			db.Close()
			return nil, fmt.Errorf("index on %w", err)
		}
	}
	if err := s.buildIndexes(); err != nil {
		db.Close()
		return nil, err
	}
	go s.writeLoop()
	s.startExpiry(opts)
	return s, nil
}

// withExpiryIndexes returns indexes plus each expiry field, leaving the caller's map as it was.
func withExpiryIndexes(indexes map[string][]string, expire map[string]string) map[string][]string {
	out := make(map[string][]string, len(indexes)+len(expire))
	for c, fields := range indexes {
		out[c] = slices.Clone(fields)
	}
	for c, f := range expire {
		if !slices.Contains(out[c], f) {
			out[c] = append(out[c], f)
		}
	}
	return out
}

func (s *Store) startExpiry(opts Options) {
	if len(s.expire) == 0 || opts.ExpireEvery < 0 {
		return
	}
	every, log := opts.ExpireEvery, opts.Logger
	if every == 0 {
		every = time.Hour
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopExpiry = cancel
	s.swept.Go(func() { s.expireLoop(ctx, every, log) })
}

// Close waits for running transactions, stops the writer and closes the file.
func (s *Store) Close() error {
	s.stopExpiry()
	s.swept.Wait()
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.commits)
		<-s.stopped
	}
	s.mu.Unlock()
	return s.db.Close()
}

// Get implements store.Store.
func (s *Store) Get(_ context.Context, collection, id string, dst any) error {
	if err := store.CheckNames(collection, id); err != nil {
		return err
	}
	var doc store.Document
	err := s.db.View(func(btx *bolt.Tx) error {
		doc = document(btx, docKey{collection, id})
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

// Collections implements store.Lister: every bucket but the indexes, sorted.
func (s *Store) Collections(context.Context) ([]string, error) {
	var out []string
	err := s.db.View(func(btx *bolt.Tx) error {
		return btx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if k, _ := b.Cursor().First(); k != nil && !strings.HasPrefix(string(name), indexPrefix) {
				out = append(out, string(name))
			}
			return nil
		})
	})
	return out, err
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
