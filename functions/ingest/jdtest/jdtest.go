// Package jdtest is an in-test JD gateway for the order poller: it checks every request's
// signature as JD documents it and serves jingdong.pop.order.search by modified time, page by page.
package jdtest

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Order is one order the gateway holds; Modified decides which windows find it.
type Order struct {
	ID, Payment, State, PaidAt, Pin, OpenID string
	Modified                                time.Time
}

// Window is one search the poller made.
type Window struct{ Start, End string }

// Server is the fake gateway, written apart from shared/platform/jd: it re-derives the sign
// from JD's document (upper hex MD5(secret + sorted name+value + secret)).
type Server struct {
	URL                   string
	appKey, secret, token string
	mu                    sync.Mutex
	orders                []Order
	windows               []Window
	badSigns              int
	// OnSearch, if set, runs before each search is answered (a test moves a cursor meanwhile).
	OnSearch func()
}

var beijing = time.FixedZone("GMT+8", 8*3600)

// New starts a gateway for one app and shop token, closed at cleanup.
func New(t testing.TB, appKey, secret, token string) *Server {
	s := &Server{appKey: appKey, secret: secret, token: token}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Put adds or replaces an order (by id).
func (s *Server) Put(o Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.orders {
		if s.orders[i].ID == o.ID {
			s.orders[i] = o
			return
		}
	}
	s.orders = append(s.orders, o)
}

// Windows lists the searched windows, first page of each only.
func (s *Server) Windows() []Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Window(nil), s.windows...)
}

// BadSigns counts requests whose signature or credentials did not verify.
func (s *Server) BadSigns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badSigns
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !s.signed(r.PostForm) || r.PostForm.Get("access_token") != s.token ||
		r.PostForm.Get("method") != "jingdong.pop.order.search" {
		s.mu.Lock()
		s.badSigns++
		s.mu.Unlock()
		writeJSON(w, map[string]any{"error_response": map[string]any{"code": "19", "en_desc": "Invalid signature", "zh_desc": "签名无效"}})
		return
	}
	var q struct {
		Start    string `json:"start_date"`
		End      string `json:"end_date"`
		Page     string `json:"page"`
		PageSize string `json:"page_size"`
	}
	_ = json.Unmarshal([]byte(r.PostForm.Get("360buy_param_json")), &q)
	if s.OnSearch != nil {
		s.OnSearch()
	}
	page, _ := strconv.Atoi(q.Page)
	size, _ := strconv.Atoi(q.PageSize)
	start, err1 := time.ParseInLocation("2006-01-02 15:04:05", q.Start, beijing)
	end, err2 := time.ParseInLocation("2006-01-02 15:04:05", q.End, beijing)
	if err1 != nil || err2 != nil || page < 1 || size < 1 {
		writeJSON(w, map[string]any{"error_response": map[string]any{"code": "41", "en_desc": "bad 360buy_param_json"}})
		return
	}
	writeJSON(w, s.search(start, end, page, size, Window{q.Start, q.End}))
}

func (s *Server) search(start, end time.Time, page, size int, win Window) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if page == 1 {
		s.windows = append(s.windows, win)
	}
	var found []map[string]any
	for _, o := range s.orders {
		if m := o.Modified.Truncate(time.Second); !m.Before(start) && !m.After(end) {
			found = append(found, map[string]any{"orderId": o.ID, "venderId": "10086", "orderPayment": o.Payment, "orderTotalPrice": o.Payment,
				"orderState": o.State, "paymentConfirmTime": o.PaidAt, "modified": o.Modified.In(beijing).Format("2006-01-02 15:04:05"),
				"pin": o.Pin, "open_id_buyer": o.OpenID})
		}
	}
	total := len(found)
	lo, hi := min((page-1)*size, total), min(page*size, total)
	return map[string]any{"jingdong_pop_order_search_responce": map[string]any{"code": "0", "searchorderinfo_result": map[string]any{
		"apiResult": map[string]any{"success": true, "numberCode": 100}, "orderTotal": total, "orderInfoList": found[lo:hi]}}}
}

func (s *Server) signed(form url.Values) bool {
	var names []string
	for k := range form {
		if k != "sign" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	b := s.secret
	for _, k := range names {
		b += k + form[k][0]
	}
	sum := md5.Sum([]byte(b + s.secret))
	return strings.ToUpper(hex.EncodeToString(sum[:])) == form.Get("sign") && form.Get("app_key") == s.appKey
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}
