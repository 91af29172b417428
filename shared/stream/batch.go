package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Atomic batch publishing (NATS ADR-50, nats-server 2.12+, allow_atomic on the stream): messages
// carrying one Nats-Batch-Id are stored all together at the commit or not at all. On a lone
// server with sync_interval: always the commit is one fsync for the whole batch instead of one
// per message, which is what lets a webhook batch or a job's events keep that setting affordable.

const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
	// MaxAtomicBatch is the server's limit on messages per batch.
	MaxAtomicBatch = 1000
)

// batchReply is the server's answer: a pub ack, or an error; intermediate messages get an empty body.
type batchReply struct {
	Error *struct {
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// PublishAtomic stores msgs (at most MaxAtomicBatch) as one atomic batch. The first message is a
// request (the server confirms the batch began), the middle ones are plain publishes and the last
// commits. Any error means nothing of the batch was stored, or, when the commit's answer was lost,
// possibly all of it: publish the same messages again one by one and their Nats-Msg-Id settles it.
// The server rejects a batch holding a message id it has already stored (a retried batch).
func PublishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) error {
	if len(msgs) == 0 || len(msgs) > MaxAtomicBatch {
		return fmt.Errorf("an atomic batch holds 1 to %d messages, not %d", MaxAtomicBatch, len(msgs))
	}
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
	}
	last := len(msgs) - 1
	msgs[last].Header.Set(headerBatchCommit, "1")
	if err := request(ctx, nc, msgs[0]); err != nil || last == 0 {
		return err
	}
	for _, m := range msgs[1:last] {
		if err := nc.PublishMsg(m); err != nil {
			return fmt.Errorf("publish into batch: %w", err)
		}
	}
	return request(ctx, nc, msgs[last])
}

// request sends m and waits for the server's answer to it.
func request(ctx context.Context, nc *nats.Conn, m *nats.Msg) error {
	resp, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return fmt.Errorf("batch message %s: %w", m.Header.Get(headerBatchSeq), err)
	}
	if len(resp.Data) == 0 {
		return nil
	}
	var r batchReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return fmt.Errorf("decode the server's answer: %w", err)
	}
	if r.Error != nil {
		return fmt.Errorf("batch rejected: %s (code %d)", r.Error.Description, r.Error.ErrCode)
	}
	return nil
}

// WithoutBatchHeaders removes what PublishAtomic added, so the messages can be published one by one.
func WithoutBatchHeaders(msgs []*nats.Msg) {
	for _, m := range msgs {
		m.Header.Del(headerBatchID)
		m.Header.Del(headerBatchSeq)
		m.Header.Del(headerBatchCommit)
	}
}
