package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Sync channels: where a member's level and balance go back to, per platform.
const (
	SyncTmall       = "sync-tmall"
	SyncDouyin      = "sync-douyin"
	SyncWeCom       = "sync-wecom"
	SyncMiniProgram = "sync-miniprogram"
)

// DefaultSyncChannels maps the identity types that reach a platform to its sync channel.
var DefaultSyncChannels = map[string]string{
	"tmall_ouid": SyncTmall, "tmall_omid": SyncTmall,
	"douyin_openid":         SyncDouyin,
	"wecom_external_userid": SyncWeCom,
	"wechat_openid":         SyncMiniProgram,
}

var shanghai = time.FixedZone("CST", 8*3600)

// post sends a request and reads at most 64 KB of the answer; a transport error or a 5xx is worth
// retrying, other non-2xx answers are rejections. Errors never quote the URL's query (tokens,
// secrets, signatures).
func post(ctx context.Context, client *http.Client, method, u, contentType string, body io.Reader) ([]byte, error) {
	req, err := newRequest(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := send(client, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%s answered %d: %.200s", safeURL(req.URL), resp.StatusCode, raw)
	case resp.StatusCode >= 300:
		return nil, fmt.Errorf("%w: %s answered %d: %.200s", ErrRejected, safeURL(req.URL), resp.StatusCode, raw)
	}
	return raw, nil
}

// TOP calls the Taobao Open Platform (Tmall 会员通) to set a member's level and points, signed as
// TOP documents: every parameter but sign, sorted by name, concatenated as name+value;
// md5 → upper hex MD5(secret+s+secret), hmac → upper hex HMAC-MD5(secret, s), hmac-sha256 → upper
// hex HMAC-SHA256(secret, s); timestamp yyyy-MM-dd HH:mm:ss in GMT+8.
type TOP struct {
	URL, AppKey, Secret, Session string
	// SignMethod is md5, hmac or hmac-sha256.
	SignMethod string
	// Method is the 会员通 sync API. Unconfirmed from a primary source; one setting.
	Method string
	Client *http.Client
	Now    func() time.Time
}

// TOPSign signs TOP parameters.
func TOPSign(params map[string]string, secret, method string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "sign" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var s strings.Builder
	for _, k := range keys {
		if params[k] != "" {
			s.WriteString(k + params[k])
		}
	}
	var sum []byte
	switch method {
	case "hmac":
		m := hmac.New(md5.New, []byte(secret))
		m.Write([]byte(s.String()))
		sum = m.Sum(nil)
	case "hmac-sha256":
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(s.String()))
		sum = m.Sum(nil)
	default:
		d := md5.Sum([]byte(secret + s.String() + secret))
		sum = d[:]
	}
	return strings.ToUpper(hex.EncodeToString(sum))
}

// Deliver implements Sink.
func (t TOP) Deliver(ctx context.Context, n Notification) error {
	params := map[string]string{"method": t.Method, "app_key": t.AppKey, "session": t.Session, "format": "json", "v": "2.0",
		"sign_method": t.SignMethod, "timestamp": t.Now().In(shanghai).Format("2006-01-02 15:04:05"),
		strings.TrimPrefix(n.Vars["identityType"], "tmall_"): n.Vars["identity"], "level": n.Vars["level"], "point": n.Vars["balance"]}
	params["sign"] = TOPSign(params, t.Secret, t.SignMethod)
	form := url.Values{}
	for k, v := range params {
		if v != "" {
			form.Set(k, v)
		}
	}
	raw, err := post(ctx, t.Client, http.MethodPost, t.URL, "application/x-www-form-urlencoded;charset=utf-8", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	var answer struct {
		Error *struct {
			Code    int    `json:"code"`
			Msg     string `json:"msg"`
			SubCode string `json:"sub_code"`
		} `json:"error_response"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.Error == nil {
		return err
	}
	if strings.HasPrefix(answer.Error.SubCode, "isp.") || answer.Error.Code == 7 { // platform trouble or throttling
		return fmt.Errorf("TOP %s: %d %s %s", t.Method, answer.Error.Code, answer.Error.SubCode, answer.Error.Msg)
	}
	return fmt.Errorf("%w: TOP %s: %d %s %s", ErrRejected, t.Method, answer.Error.Code, answer.Error.SubCode, answer.Error.Msg)
}

// Doudian calls the Douyin e-commerce open API to set a member's level and points, signed as
// platforms.md records: HMAC-SHA256 keyed by the app secret over app_secret + "app_key"+k +
// "method"+m + "param_json"+pj + "timestamp"+ts + "v"+"2" + app_secret, param_json with sorted keys.
// Lowercase hex is assumed (unconfirmed); it is one line below.
type Doudian struct {
	URL, AppKey, Secret, AccessToken string
	// Method is the member sync API (unconfirmed from a primary source; one setting).
	Method string
	Client *http.Client
	Now    func() time.Time
}

// DoudianSign signs a Doudian request.
func DoudianSign(secret, appKey, method, paramJSON, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(secret + "app_key" + appKey + "method" + method + "param_json" + paramJSON + "timestamp" + timestamp + "v2" + secret))
	return hex.EncodeToString(m.Sum(nil))
}

// Deliver implements Sink.
func (d Doudian) Deliver(ctx context.Context, n Notification) error {
	params := map[string]string{"open_id": n.Vars["identity"], "shop_id": n.Vars["scope"], "level": n.Vars["level"], "points": n.Vars["balance"]}
	for k, v := range params {
		if v == "" {
			delete(params, k)
		}
	}
	pj, err := json.Marshal(params) // encoding/json writes map keys sorted, as the signature needs
	if err != nil {
		return err
	}
	ts := fmt.Sprint(d.Now().Unix())
	q := url.Values{"app_key": {d.AppKey}, "method": {d.Method}, "access_token": {d.AccessToken}, "timestamp": {ts},
		"v": {"2"}, "sign_method": {"hmac-sha256"}, "sign": {DoudianSign(d.Secret, d.AppKey, d.Method, string(pj), ts)}}
	u := strings.TrimRight(d.URL, "/") + "/" + strings.ReplaceAll(d.Method, ".", "/") + "?" + q.Encode()
	raw, err := post(ctx, d.Client, http.MethodPost, u, "application/json", strings.NewReader(string(pj)))
	if err != nil {
		return err
	}
	var answer struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return fmt.Errorf("%w: doudian answered %.200s", ErrRejected, raw)
	}
	switch {
	case answer.Code == 10000:
		return nil
	case answer.Code >= 50000: // service side trouble
		return fmt.Errorf("doudian %s: %d %s", d.Method, answer.Code, answer.Msg)
	}
	return fmt.Errorf("%w: doudian %s: %d %s", ErrRejected, d.Method, answer.Code, answer.Msg)
}

// WeCom tags an external contact with its level through the WeCom API: an access token from
// gettoken (corp id + secret, cached until it expires), then externalcontact/mark_tag by the
// staff member the contact belongs to. Balance-only syncs have nothing to tag. The same client
// (and token cache) sends messages to external contacts (WeComContact).
type WeCom struct {
	URL, CorpID, Secret, StaffUserID string
	// TagByLevel maps a level to its WeCom tag id.
	TagByLevel map[string]string
	Client     *http.Client
	Now        func() time.Time

	tokens *tokenCache
}

// NewWeCom prepares the token cache.
func NewWeCom(w WeCom) WeCom {
	w.tokens = &tokenCache{fetch: w.fetchToken, now: w.Now}
	return w
}

// fetchToken calls gettoken. WeCom hands out the same token until it expires, so a refresh
// after 40014/42001 needs nothing more than asking again.
func (w WeCom) fetchToken(ctx context.Context, _ bool, _ string) (string, time.Duration, error) {
	u := strings.TrimRight(w.URL, "/") + "/cgi-bin/gettoken?" + url.Values{"corpid": {w.CorpID}, "corpsecret": {w.Secret}}.Encode()
	raw, err := post(ctx, w.Client, http.MethodGet, u, "", nil)
	if err != nil {
		return "", 0, fmt.Errorf("wecom gettoken: %w", err)
	}
	var answer struct {
		ErrCode     int    `json:"errcode"`
		ErrMsg      string `json:"errmsg"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.ErrCode != 0 || answer.AccessToken == "" {
		return "", 0, fmt.Errorf("%w: wecom gettoken: %d %s", ErrRejected, answer.ErrCode, answer.ErrMsg)
	}
	return answer.AccessToken, time.Duration(answer.ExpiresIn) * time.Second, nil
}

// wecomAnswer is the envelope of every WeCom API answer; FailList is add_msg_template's list of
// recipients it could not reach.
type wecomAnswer struct {
	ErrCode  int      `json:"errcode"`
	ErrMsg   string   `json:"errmsg"`
	FailList []string `json:"fail_list"`
	MsgID    string   `json:"msgid"`
}

// call POSTs a JSON body to a WeCom API path with the access token, fetching a new token once
// when WeCom says the token is invalid (40014) or expired (42001). Other error codes are for the
// caller to judge.
func (w WeCom) call(ctx context.Context, path string, body []byte) (wecomAnswer, error) {
	for attempt := range 2 {
		token, err := w.tokens.get(ctx, attempt > 0)
		if err != nil {
			return wecomAnswer{}, err
		}
		u := strings.TrimRight(w.URL, "/") + path + "?access_token=" + url.QueryEscape(token)
		raw, err := post(ctx, w.Client, http.MethodPost, u, "application/json", bytes.NewReader(body))
		if err != nil {
			return wecomAnswer{}, fmt.Errorf("wecom %s: %w", path, err)
		}
		var r wecomAnswer
		if err := json.Unmarshal(raw, &r); err != nil {
			return r, fmt.Errorf("%w: wecom %s answered %.200s", ErrRejected, path, raw)
		}
		if r.ErrCode != 40014 && r.ErrCode != 42001 {
			return r, nil
		}
	}
	return wecomAnswer{}, fmt.Errorf("wecom %s: the access token kept expiring", path)
}

// Deliver implements Sink.
func (w WeCom) Deliver(ctx context.Context, n Notification) error {
	level := n.Vars["level"]
	if level == "" {
		return nil
	}
	body := map[string]any{"userid": w.StaffUserID, "external_userid": n.Vars["identity"], "add_tag": []string{w.TagByLevel[level]}}
	var remove []string
	for l, tag := range w.TagByLevel {
		if l != level {
			remove = append(remove, tag)
		}
	}
	sort.Strings(remove)
	body["remove_tag"] = remove
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	r, err := w.call(ctx, "/cgi-bin/externalcontact/mark_tag", raw)
	switch {
	case err != nil:
		return err
	case r.ErrCode == 0:
		return nil
	case wecomBusy(r.ErrCode):
		return fmt.Errorf("wecom mark_tag: %d %s", r.ErrCode, r.ErrMsg)
	}
	return fmt.Errorf("%w: wecom mark_tag: %d %s", ErrRejected, r.ErrCode, r.ErrMsg)
}

// wecomBusy reports the WeCom error codes worth retrying: system busy (-1) and the frequency
// limits (45009 API calls, 45033 concurrency).
func wecomBusy(code int) bool { return code == -1 || code == 45009 || code == 45033 }
