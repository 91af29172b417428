package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/omnimember/omnimember/shared/store"
	bolt "go.etcd.io/bbolt"
)

// expireBatch bounds the documents one expiry transaction deletes.
const expireBatch = 500

// Expire deletes the documents whose expiry field (Options.Expire) holds a time before now, as a
// Firestore TTL policy does, and returns how many it deleted. The store runs it every ExpireEvery.
// Candidates come from the field's index, which orders times as written: a time in a zone east of
// UTC is found up to its offset late. Each is checked again, parsed, in the deleting transaction.
func (s *Store) Expire(ctx context.Context, now time.Time) (int, error) {
	deleted := 0
	for collection, field := range s.expire {
		n, err := s.expireCollection(ctx, collection, field, now)
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("expire %s: %w", collection, err)
		}
	}
	return deleted, nil
}

// expireCollection walks the field's index up to now, expireBatch documents per transaction, each
// read in a short view that resumes after the last key handled: memory stays bounded however much
// has expired, and a candidate kept (not yet past its time after all) is not read again.
func (s *Store) expireCollection(ctx context.Context, collection, field string, now time.Time) (int, error) {
	enc, _ := encodeValue(now.UTC().Format(time.RFC3339Nano))
	bound := escape(enc)
	var after []byte
	deleted := 0
	for {
		ids, last, err := s.expiryCandidates(collection, field, bound, after)
		if err != nil || len(ids) == 0 {
			return deleted, err
		}
		n, err := s.deleteExpired(ctx, collection, field, ids, now)
		deleted += n
		if err != nil {
			return deleted, err
		}
		after = last
	}
}

// expiryCandidates returns up to expireBatch ids whose indexed time sorts before bound, starting
// after the index key after (nil: from the start), and the last key it read.
func (s *Store) expiryCandidates(collection, field string, bound, after []byte) ([]string, []byte, error) {
	var ids []string
	var last []byte
	err := s.db.View(func(btx *bolt.Tx) error {
		b := btx.Bucket(indexBucket(collection, field))
		if b == nil {
			return nil
		}
		start := bound[:1] // the first string
		if after != nil {
			start = after
		}
		c := b.Cursor()
		k, _ := c.Seek(start)
		if after != nil && bytes.Equal(k, after) {
			k, _ = c.Next()
		}
		for ; k != nil && k[0] == bound[0] && len(ids) < expireBatch; k, _ = c.Next() {
			value, id := splitKey(k)
			if bytes.Compare(value, bound) >= 0 {
				break
			}
			ids = append(ids, id)
			last = append(last[:0], k...)
		}
		return nil
	})
	return ids, last, err
}

func (s *Store) deleteExpired(ctx context.Context, collection, field string, ids []string, now time.Time) (int, error) {
	var deleted int
	err := s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		deleted = 0
		docs, err := tx.GetAll(collection, ids)
		if err != nil {
			return err
		}
		var gone []string
		for _, d := range docs {
			if d.Exists && expired(d.Data, field, now) {
				gone = append(gone, d.ID)
			}
		}
		for _, id := range gone {
			if err := tx.Delete(collection, id); err != nil {
				return err
			}
		}
		deleted = len(gone)
		return nil
	})
	return deleted, err
}

// expired reports whether the document's top-level field is a time before now; a document
// without one, or with something else there, is kept.
func expired(raw []byte, field string, now time.Time) bool {
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil {
		return false
	}
	var at time.Time
	if json.Unmarshal(doc[field], &at) != nil || at.IsZero() {
		return false
	}
	return at.Before(now)
}

// expireLoop runs Expire every interval until ctx ends.
func (s *Store) expireLoop(ctx context.Context, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		n, err := s.Expire(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("embedded store: expiry sweep failed; the next sweep tries again", "deleted", n, "error", err)
		case n > 0:
			log.Info("embedded store: expired documents deleted", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
