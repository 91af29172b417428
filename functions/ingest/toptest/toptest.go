// Package toptest is an in-test TOP gateway for the TMC poller: it checks every request's
// signature the way TOP documents it, serves queued TMC messages and records confirms.
package toptest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Message is one queued TMC message.
type Message struct {
	ID, Topic, Content, PubTime string
	UserID                      int64
}

// Server is the fake gateway. Written apart from shared/platform/top on purpose: it re-derives
// the signature from TOP's document (API调用方法详解, 签名算法) so the client is checked against
// an independent reading.
type Server struct {
	URL            string
	appKey, secret string
	mu             sync.Mutex
	pending        []Message
	confirmed      map[string]int
	badSigns       int
	failConfirms   int
	// OnConfirm, if set, sees each successful confirm before it is recorded.
	OnConfirm func(ids []string)
	drained   chan struct{}
}

// New starts a gateway for one app, closed at cleanup.
func New(t testing.TB, appKey, secret string) *Server {
	s := &Server{appKey: appKey, secret: secret, confirmed: map[string]int{}, drained: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Add queues messages.
func (s *Server) Add(msgs ...Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, msgs...)
}

// FailConfirms makes the next n confirms fail as a lost connection would.
func (s *Server) FailConfirms(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failConfirms = n
}

// Confirmed returns how often each message id was confirmed.
func (s *Server) Confirmed() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.confirmed))
	for k, v := range s.confirmed {
		out[k] = v
	}
	return out
}

// BadSigns counts requests whose signature did not verify.
func (s *Server) BadSigns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badSigns
}

// Drained receives once a confirm leaves nothing pending.
func (s *Server) Drained() <-chan struct{} { return s.drained }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("app_key") != s.appKey || !s.signed(r.PostForm) {
		s.mu.Lock()
		s.badSigns++
		s.mu.Unlock()
		writeJSON(w, map[string]any{"error_response": map[string]any{"code": 25, "msg": "Invalid signature"}})
		return
	}
	switch r.PostForm.Get("method") {
	case "taobao.tmc.messages.consume":
		s.consume(w, r.PostForm)
	case "taobao.tmc.messages.confirm":
		s.confirm(w, r.PostForm)
	default:
		writeJSON(w, map[string]any{"error_response": map[string]any{"code": 22, "msg": "Invalid method"}})
	}
}

// signed recomputes the sign: parameters but sign sorted by name, name+value concatenated;
// md5 wraps them in the secret, hmac / hmac-sha256 key the HMAC with it; upper-case hex.
func (s *Server) signed(form map[string][]string) bool {
	var names []string
	for k := range form {
		if k != "sign" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k + form[k][0])
	}
	var h hash.Hash
	switch form["sign_method"][0] {
	case "md5":
		sum := md5.Sum([]byte(s.secret + b.String() + s.secret))
		return strings.ToUpper(hex.EncodeToString(sum[:])) == form["sign"][0]
	case "hmac":
		h = hmac.New(md5.New, []byte(s.secret))
	case "hmac-sha256":
		h = hmac.New(sha256.New, []byte(s.secret))
	default:
		return false
	}
	h.Write([]byte(b.String()))
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil))) == form["sign"][0]
}

func (s *Server) consume(w http.ResponseWriter, form map[string][]string) {
	s.mu.Lock()
	n, _ := strconv.Atoi(form["quantity"][0])
	batch := s.pending[:min(n, len(s.pending))]
	var msgs []map[string]any
	for _, m := range batch {
		id, _ := strconv.ParseInt(m.ID, 10, 64)
		msgs = append(msgs, map[string]any{"id": id, "topic": m.Topic, "content": m.Content, "pub_time": m.PubTime,
			"user_id": m.UserID, "user_nick": "omni旗舰店", "pub_app_key": "12497914"})
	}
	s.mu.Unlock()
	if len(msgs) == 0 {
		writeJSON(w, map[string]any{"tmc_messages_consume_response": map[string]any{}})
		return
	}
	writeJSON(w, map[string]any{"tmc_messages_consume_response": map[string]any{"messages": map[string]any{"tmc_message": msgs}}})
}

func (s *Server) confirm(w http.ResponseWriter, form map[string][]string) {
	ids := strings.Split(form["s_message_ids"][0], ",")
	s.mu.Lock()
	if s.failConfirms > 0 {
		s.failConfirms--
		s.mu.Unlock()
		http.Error(w, "connection reset", http.StatusBadGateway)
		return
	}
	s.mu.Unlock()
	if s.OnConfirm != nil {
		s.OnConfirm(ids)
	}
	s.mu.Lock()
	done := map[string]bool{}
	for _, id := range ids {
		s.confirmed[id]++
		done[id] = true
	}
	kept := s.pending[:0]
	for _, m := range s.pending {
		if !done[m.ID] {
			kept = append(kept, m)
		}
	}
	s.pending = kept
	empty := len(kept) == 0
	s.mu.Unlock()
	if empty {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
	writeJSON(w, map[string]any{"tmc_messages_confirm_response": map[string]any{"is_success": true}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}
