// Package wechatapitest is a stand-in for WeChat's server API in tests: it checks what WeChat
// checks (AppID and AppSecret in the stable_token JSON, a live access_token on user/info) and
// answers user/info from a map of followers.
package wechatapitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Server is a fake api.weixin.qq.com for one official account.
type Server struct {
	*httptest.Server
	AppID, Secret string

	mu        sync.Mutex
	unionIDs  map[string]string
	live      map[string]bool
	issued    int
	forced    int
	failCalls int
}

// New starts a server for appID with secret; unionIDs maps the followers' openids to unionids
// ("" for a follower without one).
func New(appID, secret string, unionIDs map[string]string) *Server {
	s := &Server{AppID: appID, Secret: secret, unionIDs: unionIDs, live: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", s.stableToken)
	mux.HandleFunc("GET /cgi-bin/user/info", s.userInfo)
	s.Server = httptest.NewServer(mux)
	return s
}

// TokensIssued counts stable_token calls that succeeded; Forced those asking force_refresh.
func (s *Server) TokensIssued() (issued, forced int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued, s.forced
}

// ExpireTokens makes every issued token answer 42001.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = map[string]bool{}
}

// FailNext makes the next n calls answer HTTP 502.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCalls = n
}

func (s *Server) failing(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCalls > 0 {
		s.failCalls--
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return true
	}
	return false
}

func (s *Server) stableToken(w http.ResponseWriter, r *http.Request) {
	if s.failing(w) {
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.GrantType != "client_credential" {
		answer(w, map[string]any{"errcode": 40002, "errmsg": "invalid grant_type"})
		return
	}
	if req.AppID != s.AppID || req.Secret != s.Secret {
		answer(w, map[string]any{"errcode": 40125, "errmsg": "invalid appsecret"})
		return
	}
	s.mu.Lock()
	s.issued++
	if req.ForceRefresh {
		s.forced++
	}
	tok := fmt.Sprintf("stable-%d", s.issued)
	s.live[tok] = true
	s.mu.Unlock()
	answer(w, map[string]any{"access_token": tok, "expires_in": 7200})
}

func (s *Server) userInfo(w http.ResponseWriter, r *http.Request) {
	if s.failing(w) {
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	live := s.live[q.Get("access_token")]
	unionID, known := s.unionIDs[q.Get("openid")]
	s.mu.Unlock()
	switch {
	case !live:
		answer(w, map[string]any{"errcode": 42001, "errmsg": "access_token expired"})
	case !known:
		answer(w, map[string]any{"errcode": 40003, "errmsg": "invalid openid"})
	default:
		info := map[string]any{"subscribe": 1, "openid": q.Get("openid"), "language": "zh_CN", "subscribe_time": 1700000000, "subscribe_scene": "ADD_SCENE_QR_CODE"}
		if unionID != "" {
			info["unionid"] = unionID
		}
		answer(w, info)
	}
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}
