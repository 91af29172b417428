package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	jdSenderToken       = "jd-shop-9-sender-0123456789"
	dispatcherToken     = "eventing-dispatcher-0123456789"
	unknownSenderToken  = "not-a-sender-token-0123456789"
	jdSource, jdOther   = "jd/jd-shop-9", "tmall/shop-1001"
	internalSourceMatch = "omnimember/match"
)

// countingIngest validates and passes events on, counting handler calls: a refused request must
// not reach the handler at all.
func countingIngest(calls *atomic.Int32) Function {
	f := validatingIngest()
	next := f.Handle
	f.Handle = func(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		calls.Add(1)
		return next(ctx, ev)
	}
	return f
}

func scopedSenders(t *testing.T) *credential.Senders {
	t.Helper()
	s, err := credential.NewSenders(
		credential.Sender{Name: "jd-shop-9", Token: jdSenderToken, Sources: []string{jdSource}},
		credential.Sender{Name: "dispatcher", Token: dispatcherToken, Sources: []string{"*"}, Internal: true})
	require.NoError(t, err)
	return s
}

func eventFrom(t *testing.T, id, source string) []byte {
	t.Helper()
	ev := orderEvent(t, id)
	ev.SetSource(source)
	raw, err := json.Marshal(ev)
	require.NoError(t, err)
	return raw
}

// TestReceiverAuthenticatesSenders: POST /v1/events (and a chained function's receiver) takes a
// bearer token scoped to sources; anonymous 401 with WWW-Authenticate, out of scope 403 naming
// the event, the whole batch checked before any handler runs, nothing stored for a refusal.
func TestReceiverAuthenticatesSenders(t *testing.T) {
	srv := brokertest.Start(t)
	cfg := testConfig()
	cfg.Senders = scopedSenders(t)
	var calls atomic.Int32
	h := startHarness(t, brokertest.Connect(t, srv), cfg, countingIngest(&calls))
	identity, err := events.Example(events.IdentityResolved)
	require.NoError(t, err)
	identity.SetSource(jdSource) // a channel's source on a type only the chain produces
	internal, err := json.Marshal(identity)
	require.NoError(t, err)
	batch := func(parts ...[]byte) []byte {
		return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
	}
	const structured, batched = "application/cloudevents+json", "application/cloudevents-batch+json"

	tests := []struct {
		name        string
		token       string // "" sends no Authorization
		contentType string
		body        []byte
		wantStatus  int
		wantField   string
		wantCalls   int32
	}{
		{"anonymous", "", structured, eventFrom(t, "a-1", jdSource), http.StatusUnauthorized, "", 0},
		{"unknown token", unknownSenderToken, structured, eventFrom(t, "a-2", jdSource), http.StatusUnauthorized, "", 0},
		{"its own source", jdSenderToken, structured, eventFrom(t, "ok-1", jdSource), http.StatusAccepted, "", 1},
		{"another platform's source", jdSenderToken, structured, eventFrom(t, "a-3", jdOther), http.StatusForbidden, "source", 0},
		{"the chain's own source", jdSenderToken, structured, eventFrom(t, "a-4", internalSourceMatch), http.StatusForbidden, "source", 0},
		{"an internal type", jdSenderToken, structured, internal, http.StatusForbidden, "type", 0},
		{"one bad event refuses the batch before any handler", jdSenderToken, batched,
			batch(eventFrom(t, "b-1", jdSource), eventFrom(t, "b-2", jdSource), eventFrom(t, "b-3", jdOther)), http.StatusForbidden, "[2].source", 0},
		{"a batch in scope", jdSenderToken, batched, batch(eventFrom(t, "ok-2", jdSource), eventFrom(t, "ok-3", jdSource)), http.StatusAccepted, "", 2},
		{"an internal scope", dispatcherToken, structured, eventFrom(t, "ok-4", internalSourceMatch), http.StatusAccepted, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			req, err := http.NewRequest(http.MethodPost, h.base+"/v1/events", bytes.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", tt.contentType)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var eb ErrorBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
			assert.Equal(t, tt.wantStatus, resp.StatusCode, "got status, want (error %q)", eb.Error)
			assert.Equal(t, tt.wantField, eb.Field, "got field, want")
			assert.Equal(t, tt.wantCalls, calls.Load(), "got handler calls, want")
			if resp.StatusCode == http.StatusUnauthorized {
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
			}
			assert.NotContains(t, eb.Error, jdSenderToken, "an answer never quotes a token")
		})
	}
	var ids []string
	for _, ev := range brokertest.Events(t, h.js, stream.Events, events.OrderPaid) {
		ids = append(ids, ev.ID())
	}
	assert.ElementsMatch(t, []string{"ok-1", "ok-2", "ok-3", "ok-4"}, ids, "refused requests stored nothing")
}

// TestReceiverWithoutSendersIsClosed: no sender configured means every post is refused, never
// accepted: 401 when anonymous, 403 with a token (none can open it).
func TestReceiverWithoutSendersIsClosed(t *testing.T) {
	srv := brokertest.Start(t)
	cfg := testConfig()
	cfg.Senders = nil
	var calls atomic.Int32
	h := startHarness(t, brokertest.Connect(t, srv), cfg, countingIngest(&calls))
	status, eb := post(t, h.base+"/v1/events", "application/cloudevents+json", nil, eventFrom(t, "c-1", jdSource))
	assert.Equal(t, http.StatusForbidden, status, "got status, want 403 (error %q)", eb.Error)
	assert.Contains(t, eb.Error, "OMNIMEMBER_SENDER_TOKENS", "the answer says what to configure")
	status, _ = post(t, h.base+"/v1/events", "application/cloudevents+json", map[string]string{"Authorization": ""}, eventFrom(t, "c-2", jdSource))
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Zero(t, calls.Load())
	assert.Empty(t, brokertest.Events(t, h.js, stream.Events, events.OrderPaid))
}

// lockedBuffer collects a logger's output from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPanicNeverReachesTheAnswer: a handler's panic is a 503 "retry" whose body holds neither the
// panic's value nor its stack; the log keeps both for the operator.
func TestPanicNeverReachesTheAnswer(t *testing.T) {
	srv := brokertest.Start(t)
	logs := &lockedBuffer{}
	fn := Function{Name: "ingest", EventsPath: "/v1/events", Handle: func(context.Context, cloudevents.Event) ([]cloudevents.Event, error) {
		panic("member 13812345678 broke the handler")
	}}
	h := startHarnessLogging(t, brokertest.Connect(t, srv), testConfig(), logs, fn)
	req, err := http.NewRequest(http.MethodPost, h.base+"/v1/events", bytes.NewReader(eventFrom(t, "p-1", jdSource)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+testSenderToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	for _, leak := range []string{"13812345678", "broke the handler", "goroutine", ".go:", "panic"} {
		assert.NotContains(t, string(body), leak, "the answer holds no panic value or stack")
	}
	assert.Contains(t, logs.String(), "broke the handler", "the log keeps the panic")
	assert.Contains(t, logs.String(), "goroutine", "and its stack")
}

// TestRejectionLogNamesTheFieldNotTheValue: an event refused at /v1/events is logged with the
// field and the kind of failure; the value (here a phone where a time belongs, which the schema's
// reason quotes) stays out of the log. The sender's 400 still names the field.
func TestRejectionLogNamesTheFieldNotTheValue(t *testing.T) {
	srv := brokertest.Start(t)
	logs := &lockedBuffer{}
	h := startHarnessLogging(t, brokertest.Connect(t, srv), testConfig(), logs, validatingIngest())
	ev := orderEvent(t, "bad-1")
	var data map[string]any
	require.NoError(t, json.Unmarshal(ev.Data(), &data))
	data["paidAt"] = "13812345678"
	require.NoError(t, ev.SetData(cloudevents.ApplicationJSON, data))
	raw, err := json.Marshal(ev)
	require.NoError(t, err)
	status, eb := post(t, h.base+"/v1/events", "application/cloudevents+json", nil, raw)
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "data.paidAt", eb.Field)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"outcome":"rejected"`) }, 10*time.Second, 5*time.Millisecond)
	assert.NotContains(t, logs.String(), "13812345678", "the log never holds the value")
	assert.Contains(t, logs.String(), "data.paidAt: format", "the log names the field and the kind of failure")
}

// shortLimits make the read timeouts short enough for a test to reach; the test waits on the
// connection's end, with a deadline, not on a clock.
func shortLimits() HTTPLimits {
	l := DefaultHTTPLimits()
	l.ReadHeaderTimeout, l.ReadTimeout, l.WriteTimeout = 200*time.Millisecond, 300*time.Millisecond, 5*time.Second
	return l
}

// TestStalledBodyIsCut: a client that sends headers and part of its body, then nothing, gets its
// connection closed by the read timeout instead of holding a goroutine forever.
func TestStalledBodyIsCut(t *testing.T) {
	srv := brokertest.Start(t)
	cfg := testConfig()
	cfg.HTTP = shortLimits()
	h := startHarness(t, brokertest.Connect(t, srv), cfg, validatingIngest())
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: 4096\r\n\r\n{\"specversion\":", testSenderToken)
	require.NoError(t, err)
	// The condition: the server ends the connection. The deadline only bounds a failing test.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode, "got status, want 408 for a body cut off")
	}
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server still held the stalled connection after 30 s")
	_, err = conn.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection is closed")
}

// TestOversizedHeaderIs431: 200 KB of headers is refused by the server with 431, not handed to
// a handler that answers 503 "retry" (a sender would retry it forever).
func TestOversizedHeaderIs431(t *testing.T) {
	srv := brokertest.Start(t)
	var calls atomic.Int32
	h := startHarness(t, brokertest.Connect(t, srv), testConfig(), countingIngest(&calls))
	status, _ := post(t, h.base+"/v1/events", "application/json", map[string]string{
		"ce-specversion": "1.0", "ce-id": strings.Repeat("x", 200<<10), "ce-type": events.OrderPaid, "ce-source": jdSource,
	}, orderEvent(t, "x").Data())
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, status)
	assert.Zero(t, calls.Load())
}

// TestLongRunningRouteOutlivesTheWriteTimeout: a job route answers after the write timeout has
// passed; an ordinary route's answer is cut off by it.
func TestLongRunningRouteOutlivesTheWriteTimeout(t *testing.T) {
	srv := brokertest.Start(t)
	cfg := testConfig()
	cfg.HTTP = shortLimits()
	cfg.HTTP.WriteTimeout = 400 * time.Millisecond
	job := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-time.After(2 * cfg.HTTP.WriteTimeout) // the job outlasts the write deadline: that is what is tested
		WriteJSON(w, http.StatusOK, map[string]string{"status": "done"})
	})
	fn := Function{Name: "jobs", Routes: func(mux Mux, _ *Publisher) {
		mux.Handle("POST /job", LongRunning(job))
		mux.Handle("POST /short", job)
	}}
	h := startHarness(t, brokertest.Connect(t, srv), cfg, fn)
	resp, err := http.Post(h.base+"/job", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Post(h.base+"/short", "application/json", nil)
	if err == nil {
		resp.Body.Close()
	}
	assert.Error(t, err, "without LongRunning the answer is cut off")
	assert.Equal(t, []string{"GET /healthz", "GET /readyz", "GET /metrics", "POST /job", "POST /short"}, h.rt.Routes(), "got routes, want every pattern served")
}

func TestHTTPLimitsFromEnv(t *testing.T) {
	t.Setenv("OMNIMEMBER_HTTP_READ_TIMEOUT", "15s")
	t.Setenv("OMNIMEMBER_MAX_HEADER_BYTES", "32768")
	t.Setenv(credential.SendersEnv, `[{"name":"jd","token":"`+jdSenderToken+`","sources":["jd/*"]}]`)
	c, err := FromEnv()
	require.NoError(t, err)
	assert.Equal(t, 15*time.Second, c.HTTP.ReadTimeout)
	assert.Equal(t, 32768, c.HTTP.MaxHeaderBytes)
	assert.Equal(t, 1, c.Senders.Len())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "runtime", c)
	assert.NotContains(t, buf.String(), jdSenderToken, "sender tokens are masked in the start line")
	assert.Contains(t, buf.String(), `"jd":"jd/* token=***"`)

	for name, value := range map[string]string{"OMNIMEMBER_HTTP_READ_TIMEOUT": "1s", "OMNIMEMBER_HTTP_WRITE_TIMEOUT": "10s",
		"OMNIMEMBER_MAX_HEADER_BYTES": "100", "OMNIMEMBER_HTTP_IDLE_TIMEOUT": "later", credential.SendersEnv: `[{"name":"x"}]`} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("OMNIMEMBER_HTTP_READ_TIMEOUT", "15s")
			t.Setenv(name, value)
			_, err := FromEnv()
			require.Error(t, err)
			assert.Contains(t, err.Error(), strings.TrimSuffix(name, "_FILE"), "got %q, want the variable named", err)
		})
	}
}
