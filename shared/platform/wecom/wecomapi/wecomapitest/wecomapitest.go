// Package wecomapitest is a stand-in for WeCom's server API in tests: it checks what WeCom checks
// (the corp id and secret on gettoken, a live access_token on every call) and serves
// externalcontact/get from a map of contacts.
package wecomapitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Contact is one external contact the server knows.
type Contact struct {
	Type    int
	UnionID string
}

// Server is a fake qyapi.weixin.qq.com for one corp.
type Server struct {
	*httptest.Server
	CorpID, Secret string

	mu       sync.Mutex
	contacts map[string]Contact
	live     map[string]bool
	issued   int
	fail     int
	refuse   int
}

// New starts a server for corpID with secret and the given contacts by external user id.
func New(corpID, secret string, contacts map[string]Contact) *Server {
	s := &Server{CorpID: corpID, Secret: secret, contacts: contacts, live: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/gettoken", s.gettoken)
	mux.HandleFunc("GET /cgi-bin/externalcontact/get", s.contact)
	s.Server = httptest.NewServer(mux)
	return s
}

// TokensIssued counts successful gettoken calls.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// ExpireTokens makes every issued token answer 42001 from now on.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = map[string]bool{}
}

// Refuse makes externalcontact/get answer errcode code (0: answer normally again), as WeCom does
// for a secret without 客户联系 rights (48002) or a server IP not on the list (60020).
func (s *Server) Refuse(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = code
}

// FailNext makes the next n calls answer HTTP 502.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = n
}

func (s *Server) failing(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return true
	}
	return false
}

func (s *Server) gettoken(w http.ResponseWriter, r *http.Request) {
	if s.failing(w) {
		return
	}
	q := r.URL.Query()
	if q.Get("corpid") != s.CorpID || q.Get("corpsecret") != s.Secret {
		answer(w, map[string]any{"errcode": 40001, "errmsg": "invalid credential"})
		return
	}
	s.mu.Lock()
	s.issued++
	tok := fmt.Sprintf("token-%d", s.issued)
	s.live[tok] = true
	s.mu.Unlock()
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "access_token": tok, "expires_in": 7200})
}

func (s *Server) contact(w http.ResponseWriter, r *http.Request) {
	if s.failing(w) {
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	live := s.live[q.Get("access_token")]
	c, known := s.contacts[q.Get("external_userid")]
	refuse := s.refuse
	s.mu.Unlock()
	switch {
	case refuse != 0:
		answer(w, map[string]any{"errcode": refuse, "errmsg": "refused"})
	case !live:
		answer(w, map[string]any{"errcode": 42001, "errmsg": "access_token expired"})
	case !known:
		answer(w, map[string]any{"errcode": 84061, "errmsg": "not external contact"})
	default:
		ext := map[string]any{"external_userid": q.Get("external_userid"), "name": "李四", "type": c.Type, "gender": 1}
		if c.UnionID != "" {
			ext["unionid"] = c.UnionID
		}
		answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "external_contact": ext, "follow_user": []any{}})
	}
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}
