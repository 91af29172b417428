package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/stream"
)

// build compiles each function the way `make build` does: alone, static, stripped.
func build(root, out string, ts []target) (map[string]string, error) {
	bins := map[string]string{}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		bin := filepath.Join(abs, t.name)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/"+t.name)
		cmd.Dir = filepath.Join(root, "functions", t.name)
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %w\n%s", t.name, err, msg)
		}
		bins[t.name] = bin
	}
	return bins, nil
}

// existing names binaries built before, one per function in dir.
func existing(dir string, ts []target) (map[string]string, error) {
	bins := map[string]string{}
	for _, t := range ts {
		bin, err := filepath.Abs(filepath.Join(dir, t.name))
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(bin); err != nil {
			return nil, err
		}
		bins[t.name] = bin
	}
	return bins, nil
}

// bench is the NATS server the functions connect to, and the bench's own connection to it.
type bench struct {
	srv                   *broker.Server
	nc                    *nats.Conn
	js                    jetstream.JetStream
	piiKeys, identityKeys string
}

func startBroker(dir string) (*bench, error) {
	srv, err := broker.Start(broker.Options{Dir: dir, Port: -1})
	if err != nil {
		return nil, err
	}
	b := &bench{srv: srv, piiKeys: pii.NewKey("coldstart"), identityKeys: identity.NewKey("coldstart")}
	if b.nc, err = srv.Connect("coldstart"); err != nil {
		b.stop()
		return nil, err
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		b.stop()
		return nil, err
	}
	if err := stream.Ensure(context.Background(), b.js, stream.DefaultTopology()); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

func (b *bench) stop() {
	if b.nc != nil {
		b.nc.Close()
	}
	b.srv.Shutdown()
}

// reset gives the next cold start an empty stream and no consumer, as a fresh deployment has.
func (b *bench) reset(ctx context.Context, function string) error {
	if err := b.js.DeleteConsumer(ctx, stream.Events, function); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	for _, name := range []string{stream.Events, stream.DeadLetters} {
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		if err := s.Purge(ctx); err != nil {
			return err
		}
	}
	return nil
}

// enqueue stores the function's input event before the process exists and returns its sequence.
func (b *bench) enqueue(ctx context.Context, eventType, id string) (uint64, error) {
	ev, err := events.Example(eventType)
	if err != nil {
		return 0, err
	}
	ev.SetID(id)
	msg, err := cenats.ToMsg(events.Subject(eventType), ev)
	if err != nil {
		return 0, err
	}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	ack, err := b.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// coldStart runs the function once from a fresh store and returns its timings and idle memory.
func (b *bench) coldStart(t target, bin, dir string) (sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sample{}, err
	}
	if err := b.reset(ctx, t.name); err != nil {
		return sample{}, fmt.Errorf("reset: %w", err)
	}
	var seq uint64
	if t.input != "" {
		var err error
		if seq, err = b.enqueue(ctx, t.input, "coldstart-"+filepath.Base(dir)); err != nil {
			return sample{}, fmt.Errorf("enqueue: %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return sample{}, err
	}
	p, err := launch(bin, dir, b.env(addr, dir))
	if err != nil {
		return sample{}, err
	}
	defer p.terminate()
	s, err := b.measure(ctx, p, t, "http://"+addr, seq)
	if err != nil {
		return s, fmt.Errorf("%w (log: %s)", err, p.logTail())
	}
	return s, b.checkNotDeadLettered(ctx, t.name)
}

func (b *bench) env(addr, dir string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "NATS_URL=" + b.srv.URL(), "OMNIMEMBER_HTTP_ADDR=" + addr,
		"STORE=embedded", "STORE_PATH=" + filepath.Join(dir, "store.db"), "OMNIMEMBER_PII_KEYS=" + b.piiKeys,
		"OMNIMEMBER_IDENTITY_KEYS=" + b.identityKeys,
		credential.SendersEnv + `=[{"name":"coldstart","token":"` + probeSender + `","sources":["*"]}]`}, extraEnv...)
}

// measure races the readiness probe against the first event, then samples memory at rest.
func (b *bench) measure(ctx context.Context, p *process, t target, base string, seq uint64) (sample, error) {
	ready := make(chan result, 1)
	first := make(chan result, 1)
	go func() { ready <- poll(ctx, p, func() bool { return get(base+"/readyz") == http.StatusOK }) }()
	go func() {
		handled := func() bool { return b.ackedThrough(ctx, t.name, seq) }
		if t.input == "" {
			handled = func() bool { return postExample(base+"/v1/events") == http.StatusAccepted }
		}
		res := poll(ctx, p, handled)
		res.cpu = cpuTime(p.cmd.Process.Pid)
		first <- res
	}()
	var s sample
	for _, r := range []struct {
		ch  chan result
		dst *time.Duration
		of  string
	}{{ready, &s.ready, "/readyz 200"}, {first, &s.first, "first event"}} {
		res := <-r.ch
		if res.err != nil {
			return s, fmt.Errorf("%s: %w", r.of, res.err)
		}
		*r.dst = res.at
		s.cpu = max(s.cpu, res.cpu)
	}
	rss, err := idleRSS(ctx, p)
	s.rss = rss
	return s, err
}

type result struct {
	at  time.Duration // since the process started
	cpu time.Duration // CPU the process had used by then
	err error
}

// poll checks cond every half millisecond until it holds, the process dies or ctx ends.
func poll(ctx context.Context, p *process, cond func() bool) result {
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	for {
		if cond() {
			return result{at: time.Since(p.started)}
		}
		select {
		case <-p.exited:
			return result{err: fmt.Errorf("process exited: %v", p.exitErr)}
		case <-ctx.Done():
			return result{err: ctx.Err()}
		case <-tick.C:
		}
	}
}

var probe = &http.Client{Timeout: 2 * time.Second}

func get(url string) int {
	resp, err := probe.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// probeSender is the sender token the probed ingest accepts, fresh each run.
var probeSender = "coldstart-sender-" + rand.Text()

// postExample posts the contract's example order, paid a minute ago under a fresh id, so that
// ingest's live window admits it and no earlier run's id conflicts with it.
func postExample(url string) int {
	ev, err := events.Example(events.OrderPaid)
	if err != nil {
		return 0
	}
	d, err := events.Decode[events.OrderPaidData](ev)
	if err != nil {
		return 0
	}
	d.PaidAt = time.Now().Add(-time.Minute).Truncate(time.Second)
	ev, err = events.New(events.OrderPaid, fmt.Sprint("coldstart-", time.Now().UnixNano()), ev.Source(), d.PaidAt, d)
	if err != nil {
		return 0
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return 0
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+probeSender)
	resp, err := probe.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ackedThrough reports whether the function's durable consumer has acknowledged (or terminated)
// everything up to seq: the handler ran and its outputs were stored.
func (b *bench) ackedThrough(ctx context.Context, function string, seq uint64) bool {
	c, err := b.js.Consumer(ctx, stream.Events, function)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	return err == nil && info.AckFloor.Stream >= seq
}

func (b *bench) checkNotDeadLettered(ctx context.Context, function string) error {
	s, err := b.js.Stream(ctx, stream.DeadLetters)
	if err != nil {
		return err
	}
	m, err := s.GetLastMsgForSubject(ctx, stream.DeadLetterSubject(function))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("the input was dead-lettered, not handled: %s", m.Header.Get(stream.HeaderDeadLetterReason))
}

// idleRSS samples VmRSS every 100 ms once the process has been idle a second, until five samples
// in a row agree within 1%, and returns the last.
func idleRSS(ctx context.Context, p *process) (int64, error) {
	idleFrom := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var window []int64
	for {
		select {
		case <-p.exited:
			return 0, fmt.Errorf("process exited while idle: %v", p.exitErr)
		case <-ctx.Done():
			return 0, fmt.Errorf("memory never settled: %w", ctx.Err())
		case <-tick.C:
		}
		rss, err := vmRSS(p.cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		if time.Since(idleFrom) < time.Second {
			continue
		}
		window = append(window, rss)
		if n := len(window); n >= 5 {
			lo, hi := minMax(window[n-5:])
			if float64(hi-lo) <= 0.01*float64(hi) {
				return rss, nil
			}
		}
	}
}

func minMax(vs []int64) (lo, hi int64) {
	lo, hi = vs[0], vs[0]
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// cpuTime is the CPU time all of the process's threads have run, from /proc/<pid>/task/*/schedstat
// (nanoseconds on CPU): unlike wall-clock time it does not grow when other work shares the cores.
func cpuTime(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total int64
	for _, path := range tasks {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if fields := strings.Fields(string(raw)); len(fields) > 0 {
			ns, _ := strconv.ParseInt(fields[0], 10, 64)
			total += ns
		}
	}
	return time.Duration(total)
}

// vmRSS reads the resident set size from /proc/<pid>/status (Linux).
func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// process is one started function binary.
type process struct {
	cmd     *exec.Cmd
	log     string
	started time.Time
	exited  chan struct{}
	exitErr error
}

func launch(bin, dir string, env []string) (*process, error) {
	logPath := filepath.Join(dir, "log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, out, out
	p := &process{cmd: cmd, log: logPath, exited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	return p, nil
}

// terminate sends SIGTERM (the function drains) and kills it if it has not exited within 10 s.
func (p *process) terminate() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *process) logTail() string {
	raw, _ := os.ReadFile(p.log)
	if len(raw) > 2000 {
		raw = raw[len(raw)-2000:]
	}
	return strings.TrimSpace(string(raw))
}
