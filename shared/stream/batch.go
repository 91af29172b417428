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

// BatchAck is the server's answer to a committed batch.
type BatchAck struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"` // of the batch's last message
	Count  int    `json:"count"`
}

// batchReply is a pub ack or an error; intermediate messages are answered with an empty body.
type batchReply struct {
	BatchAck
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// PublishAtomic stores msgs (at most MaxAtomicBatch) as one atomic batch. The first message is a
// request (the server confirms the batch began), the middle ones are plain publishes and the last
// commits. Any error means nothing of the batch was stored, or, when the commit's answer was lost,
// possibly all of it: publish the same messages again one by one and their Nats-Msg-Id settles it.
// The server rejects a batch holding a message id it has already stored (a retried batch).
func PublishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) (BatchAck, error) {
	if len(msgs) == 0 || len(msgs) > MaxAtomicBatch {
		return BatchAck{}, fmt.Errorf("an atomic batch holds 1 to %d messages, not %d", MaxAtomicBatch, len(msgs))
	}
	id := nuid.Next()
	last := len(msgs) - 1
	for i, m := range msgs {
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i == last {
			m.Header.Set(headerBatchCommit, "1")
		}
		if i != 0 && i != last {
			if err := nc.PublishMsg(m); err != nil {
				return BatchAck{}, fmt.Errorf("publish message %d of batch: %w", i+1, err)
			}
			continue
		}
		reply, err := request(ctx, nc, m)
		if err != nil {
			return BatchAck{}, fmt.Errorf("message %d of batch: %w", i+1, err)
		}
		if i == last {
			return reply, nil
		}
	}
	return BatchAck{}, nil // not reached: the last message returns
}

func request(ctx context.Context, nc *nats.Conn, m *nats.Msg) (BatchAck, error) {
	resp, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return BatchAck{}, err
	}
	if len(resp.Data) == 0 {
		return BatchAck{}, nil
	}
	var r batchReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return BatchAck{}, fmt.Errorf("decode the server's answer: %w", err)
	}
	if r.Error != nil {
		return BatchAck{}, fmt.Errorf("batch rejected: %s (code %d)", r.Error.Description, r.Error.ErrCode)
	}
	return r.BatchAck, nil
}

// WithoutBatchHeaders removes what PublishAtomic added, so the messages can be published one by one.
func WithoutBatchHeaders(msgs []*nats.Msg) {
	for _, m := range msgs {
		m.Header.Del(headerBatchID)
		m.Header.Del(headerBatchSeq)
		m.Header.Del(headerBatchCommit)
	}
}
