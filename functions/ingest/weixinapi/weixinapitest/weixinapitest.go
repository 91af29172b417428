// Package weixinapitest stands in for WeCom's and WeChat's server APIs in tests: each checks what
// the real one checks (the credentials on the token call, a live access_token on every lookup)
// and answers lookups from a map.
package weixinapitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
)

// server is what both stand-ins share: the tokens issued and the failures asked for.
type server struct {
	*httptest.Server

	mu     sync.Mutex
	live   map[string]bool
	issued int
	forced int
	fail   int
	refuse int
}

// TokensIssued counts token calls that succeeded.
func (s *server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// ForcedRefreshes counts stable_token calls that asked force_refresh.
func (s *server) ForcedRefreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forced
}

// ExpireTokens makes every issued token answer 42001 from now on.
func (s *server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = map[string]bool{}
}

// Refuse makes lookups answer errcode code (0: answer normally again), as WeCom does for a secret
// without 客户联系 rights (48002) or a server IP not on the list (60020).
func (s *server) Refuse(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = code
}

// FailNext makes the next n calls answer HTTP 502.
func (s *server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = n
}

func (s *server) failing(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return true
	}
	return false
}

func (s *server) issue(prefix string, forced bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued++
	if forced {
		s.forced++
	}
	tok := fmt.Sprintf("%s-%d", prefix, s.issued)
	s.live[tok] = true
	return tok
}

// lookupRefused answers a lookup's failure, if any: a refusal asked for, or a stale token.
func (s *server) lookupRefused(w http.ResponseWriter, token string) bool {
	s.mu.Lock()
	live, refuse := s.live[token], s.refuse
	s.mu.Unlock()
	switch {
	case refuse != 0:
		answer(w, map[string]any{"errcode": refuse, "errmsg": "refused"})
	case !live:
		answer(w, map[string]any{"errcode": 42001, "errmsg": "access_token expired"})
	default:
		return false
	}
	return true
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// Contact is one external contact the WeCom stand-in knows.
type Contact struct {
	Type    int
	UnionID string
}

// WeCom is a fake qyapi.weixin.qq.com for one corp.
type WeCom struct {
	server
	CorpID, Secret string
	contacts       map[string]Contact
}

// NewWeCom starts a server for corpID with secret and the contacts by external user id.
func NewWeCom(corpID, secret string, contacts map[string]Contact) *WeCom {
	s := &WeCom{server: server{live: map[string]bool{}}, CorpID: corpID, Secret: secret, contacts: contacts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/gettoken", s.gettoken)
	mux.HandleFunc("GET /cgi-bin/externalcontact/get", s.contact)
	s.Server = httptest.NewServer(mux)
	return s
}

func (s *WeCom) gettoken(w http.ResponseWriter, r *http.Request) {
	if s.failing(w) {
		return
	}
	q := r.URL.Query()
	if q.Get("corpid") != s.CorpID || q.Get("corpsecret") != s.Secret {
		answer(w, map[string]any{"errcode": 40001, "errmsg": "invalid credential"})
		return
	}
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "access_token": s.issue("token", false), "expires_in": 7200})
}

func (s *WeCom) contact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if s.failing(w) || s.lookupRefused(w, q.Get("access_token")) {
		return
	}
	c, known := s.contacts[q.Get("external_userid")]
	if !known {
		answer(w, map[string]any{"errcode": 84061, "errmsg": "not external contact"})
		return
	}
	ext := map[string]any{"external_userid": q.Get("external_userid"), "name": "李四", "type": c.Type, "gender": 1}
	if c.UnionID != "" {
		ext["unionid"] = c.UnionID
	}
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "external_contact": ext, "follow_user": []any{}})
}

// WeChat is a fake api.weixin.qq.com for one official account.
type WeChat struct {
	server
	AppID, Secret string
	unionIDs      map[string]string
}

// NewWeChat starts a server for appID with secret; unionIDs maps the followers' openids to
// unionids ("" for a follower without one).
func NewWeChat(appID, secret string, unionIDs map[string]string) *WeChat {
	s := &WeChat{server: server{live: map[string]bool{}}, AppID: appID, Secret: secret, unionIDs: unionIDs}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", s.stableToken)
	mux.HandleFunc("GET /cgi-bin/user/info", s.userInfo)
	s.Server = httptest.NewServer(mux)
	return s
}

func (s *WeChat) stableToken(w http.ResponseWriter, r *http.Request) {
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
	answer(w, map[string]any{"access_token": s.issue("stable", req.ForceRefresh), "expires_in": 7200})
}

func (s *WeChat) userInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if s.failing(w) || s.lookupRefused(w, q.Get("access_token")) {
		return
	}
	unionID, known := s.unionIDs[q.Get("openid")]
	if !known {
		answer(w, map[string]any{"errcode": 40003, "errmsg": "invalid openid"})
		return
	}
	info := map[string]any{"subscribe": 1, "openid": q.Get("openid"), "language": "zh_CN", "subscribe_time": 1700000000, "subscribe_scene": "ADD_SCENE_QR_CODE"}
	if unionID != "" {
		info["unionid"] = unionID
	}
	answer(w, info)
}
