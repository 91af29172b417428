// Package backfill imports a platform's export file into JetStream as the contract's events, with a
// checkpoint so an interrupted import resumes after the last acknowledged row, and a progress line.
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/export"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/runtime"
)

// Producer names the importer in message ids.
const Producer = "backfill"

// Options say what to import and how.
type Options struct {
	Path       string
	Format     export.Format
	Shop       string          // shop id for rows that have none
	Keys       *identity.Keyer // the chain's identity keys: member lists' events are named by them
	Window     int             // publishes awaiting JetStream's acknowledgement at once
	Checkpoint string          // default Path + ".progress"
	Rejects    string          // default Path + ".rejects.jsonl": refused rows with line, field and reason
	Progress   io.Writer       // a progress line every ProgressEvery; nil for none
	Every      time.Duration   // checkpoint and progress interval (default 1 s)
}

// Result counts what an import did.
type Result struct {
	Rows     int           `json:"rows"`     // rows read this run
	Resumed  int           `json:"resumed"`  // rows skipped because a previous run had them acknowledged
	Events   int           `json:"events"`   // events published this run
	Refused  int           `json:"refused"`  // rows written to the rejects file
	Took     time.Duration `json:"took"`     // wall time of this run
	Complete bool          `json:"complete"` // the whole file is acknowledged
}

// RowsPerSecond is this run's rate.
func (r Result) RowsPerSecond() float64 { return float64(r.Rows) / r.Took.Seconds() }

func (o *Options) defaults() {
	if o.Window <= 0 {
		o.Window = 8192
	}
	if o.Checkpoint == "" {
		o.Checkpoint = o.Path + ".progress"
	}
	if o.Rejects == "" {
		o.Rejects = o.Path + ".rejects.jsonl"
	}
	if o.Every <= 0 {
		o.Every = time.Second
	}
}

// Import publishes every row's events in file order. Interrupted (ctx, an error, kill -9), it leaves
// a checkpoint at most Every old; the next run skips what was acknowledged, and what it publishes
// again carries the same Nats-Msg-Id (dropped by the stream's dedupe window) and the same event ids
// (the chain's receipts recognise them), so nothing is doubled.
func Import(ctx context.Context, js jetstream.JetStream, o Options) (Result, error) {
	o.defaults()
	start := time.Now()
	cp, err := loadCheckpoint(o.Checkpoint, o.Path)
	if err != nil {
		return Result{}, err
	}
	f, err := os.Open(o.Path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	counted := &countingReader{r: f}
	rd, err := export.NewReader(counted, o.Format)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", o.Path, err)
	}
	rejects, err := openRejects(o.Rejects, cp.RejectsBytes)
	if err != nil {
		return Result{}, err
	}
	defer rejects.Close()
	run := &importRun{opts: o, js: js, cp: cp, rejects: rejects, read: counted, size: info.Size(), start: start,
		conv: export.Converter{Format: o.Format, Shop: o.Shop, Keys: o.Keys}}
	err = run.loop(ctx, rd)
	run.res.Took = time.Since(start)
	return run.res, err
}

// importRun is one run's state: the window of unacknowledged publishes and the acknowledged prefix.
type importRun struct {
	opts    Options
	js      jetstream.JetStream
	conv    export.Converter
	cp      checkpoint
	rejects *rejectsFile
	read    *countingReader
	size    int64
	start   time.Time
	res     Result
	pending []pendingRow
	row     int // rows of the file seen so far
}

// pendingRow is a row whose events are published but not all acknowledged yet.
type pendingRow struct {
	row          int
	rejectsBytes int64
	futures      []jetstream.PubAckFuture
}

func (r *importRun) loop(ctx context.Context, rd *export.Reader) error {
	tick := time.NewTicker(r.opts.Every)
	defer tick.Stop()
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return r.finish(ctx)
		}
		if err != nil {
			return r.stop(ctx, fmt.Errorf("%s: %w", r.opts.Path, err))
		}
		r.row++
		if r.row <= r.cp.Rows {
			r.res.Resumed++
			continue
		}
		r.res.Rows++
		if err := r.publishRow(ctx, row); err != nil {
			return r.stop(ctx, err)
		}
		select {
		case <-tick.C:
			if err := r.save(); err != nil {
				return err
			}
			r.progress(false)
		case <-ctx.Done():
			return r.stop(context.Background(), ctx.Err())
		default:
		}
	}
}

func (r *importRun) publishRow(ctx context.Context, row export.Row) error {
	evs, err := r.conv.Events(row)
	var refused *export.RowError
	if errors.As(err, &refused) {
		r.res.Refused++
		return r.rejects.write(refused)
	}
	if err != nil {
		return fmt.Errorf("line %d: %w", row.Line, err)
	}
	p := pendingRow{row: r.row}
	for _, ev := range evs {
		msg, err := cenats.ToMsg(events.Subject(ev.Type()), ev)
		if err != nil {
			return fmt.Errorf("line %d: %w", row.Line, err)
		}
		msg.Header.Set(jetstream.MsgIDHeader, runtime.MsgID(Producer, ev.Source(), ev.ID(), 0))
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute))
		if err != nil {
			return fmt.Errorf("line %d: publish: %w", row.Line, err)
		}
		p.futures = append(p.futures, f)
	}
	p.rejectsBytes = r.rejects.size
	r.res.Events += len(evs)
	r.pending = append(r.pending, p)
	return r.settle(ctx, r.opts.Window)
}

// settle drops acknowledged rows from the front of the window, waiting while more than max are out.
func (r *importRun) settle(ctx context.Context, max int) error {
	for len(r.pending) > 0 {
		front := &r.pending[0]
		for len(front.futures) > 0 {
			f := front.futures[0]
			if len(r.pending) <= max {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					return fmt.Errorf("row %d not stored in JetStream: %w", front.row, err)
				default:
					return nil
				}
			} else if err := await(ctx, f); err != nil {
				return fmt.Errorf("row %d not stored in JetStream: %w", front.row, err)
			}
			front.futures = front.futures[1:]
		}
		r.cp.Rows, r.cp.RejectsBytes = front.row, front.rejectsBytes
		r.pending = r.pending[1:]
	}
	// Nothing out: every row read so far is stored or refused.
	r.cp.Rows, r.cp.RejectsBytes = r.row, r.rejects.size
	return nil
}

func await(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish waits for the last acknowledgements and marks the file complete.
func (r *importRun) finish(ctx context.Context) error {
	if err := r.settle(ctx, 0); err != nil {
		return r.stop(ctx, err)
	}
	r.cp.Rows, r.cp.Complete, r.res.Complete = r.row, true, true
	r.progress(true)
	return r.save()
}

// stop keeps what was acknowledged (a bounded wait for the window) in the checkpoint, then reports err.
func (r *importRun) stop(ctx context.Context, err error) error {
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = r.settle(wait, 0)
	r.progress(true)
	return errors.Join(err, r.save())
}

func (r *importRun) save() error { return r.cp.save(r.opts.Checkpoint) }

// countingReader counts bytes read, for the progress bar.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// rejectsFile appends refused rows as JSON lines.
type rejectsFile struct {
	f    *os.File
	size int64
}

// openRejects truncates the file to what the checkpoint covered, so a resumed run does not list a row twice.
func openRejects(path string, keep int64) (*rejectsFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(keep); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(keep, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &rejectsFile{f: f, size: keep}, nil
}

func (r *rejectsFile) write(e *export.RowError) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	n, err := r.f.Write(append(line, '\n'))
	r.size += int64(n)
	return err
}

func (r *rejectsFile) Close() error { return r.f.Close() }
