package embedded

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/omnimember/omnimember/shared/store"
	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds the transactions one commit (one fsync) carries.
const maxBatch = 1000

// commit is a transaction waiting for the writer: prepared (t: reads to check, writes to apply),
// or, after repeated conflicts, fn (with its ctx) to run inside the writer.
type commit struct {
	t    *tx
	ctx  context.Context
	fn   func(context.Context, store.Tx) error
	done chan error
}

// submit hands c to the writer and waits for its commit.
func (s *Store) submit(c *commit) error {
	c.done = make(chan error, 1)
	s.commits <- c
	return <-c.done
}

// writeLoop is bbolt's single writer. Transactions that arrive while a commit is being written
// and synced wait, and then all go into the next commit together: the busier the store, the more
// transactions share each fsync, with no timer.
func (s *Store) writeLoop() {
	defer close(s.stopped)
	for c := range s.commits {
		batch := []*commit{c}
	gather:
		for len(batch) < maxBatch {
			select {
			case c, ok := <-s.commits:
				if !ok {
					break gather
				}
				batch = append(batch, c)
			default:
				break gather
			}
		}
		s.commitBatch(batch)
	}
}

// commitBatch writes the batch in one bbolt transaction. A transaction that conflicts or fails on
// its own leaves nothing behind and is answered alone; one whose writes fail half-way rolls the
// commit back, is answered with its error, and the rest commit without it.
func (s *Store) commitBatch(batch []*commit) {
	results := make([]error, len(batch))
	for len(batch) > 0 {
		failed := -1
		err := s.db.Update(func(btx *bolt.Tx) error {
			for i, c := range batch {
				writes, err := s.prepare(btx, c)
				results[i] = err
				if err != nil {
					continue
				}
				if err := s.apply(btx, writes); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for i, c := range batch {
				c.done <- errors.Join(results[i], err)
			}
			return
		}
		batch[failed].done <- err
		batch = append(batch[:failed], batch[failed+1:]...)
		results = results[:len(batch)]
	}
}

// prepare returns the writes to apply: a prepared transaction's if what it read is unchanged
// (errConflict otherwise), or those of fn run now against the writer's view.
func (s *Store) prepare(btx *bolt.Tx, c *commit) (writes []write, err error) {
	if c.fn == nil {
		if !unchanged(btx, c.t.reads) {
			return nil, errConflict
		}
		return c.t.writes, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("transaction panicked: %v\n%s", r, debug.Stack())
		}
	}()
	t := &tx{s: s, writer: btx, reads: map[docKey][]byte{}}
	if err := c.fn(c.ctx, t); err != nil {
		return nil, err
	}
	return t.writes, nil
}
