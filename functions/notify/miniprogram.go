package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnimember/omnimember/shared/identity"
)

// SubscribeTemplate maps one of our templates to a mini-program subscription message template:
// its template id, the page the message opens, and each template field's value as a text with
// `{{var}}` placeholders over the notification's variables (`{{message}}` is the rendered text).
type SubscribeTemplate struct {
	TemplateID string            `json:"templateId"`
	Page       string            `json:"page,omitempty"`
	Data       map[string]string `json:"data"`
}

// SubscribeTemplates maps our template names to their subscription message templates.
type SubscribeTemplates map[string]SubscribeTemplate

// subscribeField is a template field key as the mini-program console names them: its kind and a
// number (thing1, number2, character_string3, ...).
var subscribeField = regexp.MustCompile(`^(thing|number|letter|symbol|character_string|time|date|amount|phone_number|car_number|name|phrase)[1-9][0-9]*$`)

// subscribeLimits are the value lengths (in characters) WeChat accepts per field kind
// (subscribeMessage.send, "订阅消息参数值内容限制"); longer values get errcode 47003, so texts are
// cut to fit. Kinds not listed have formats a template fills as is.
var subscribeLimits = map[string]int{"thing": 20, "name": 10, "phrase": 5, "symbol": 5, "car_number": 8,
	"number": 32, "letter": 32, "character_string": 32, "phone_number": 17}

// ParseSubscribeTemplates reads and validates a subscription template mapping file.
func ParseSubscribeTemplates(raw []byte) (SubscribeTemplates, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var t SubscribeTemplates
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("subscription templates: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("subscription templates: trailing data after the object")
	}
	return t, t.Validate()
}

// Validate checks there is a mapping, and each has a template id, at least one field, and field
// keys WeChat knows.
func (t SubscribeTemplates) Validate() error {
	if len(t) == 0 {
		return fmt.Errorf("subscription templates: none mapped")
	}
	for name, tpl := range t {
		switch {
		case strings.TrimSpace(name) == "":
			return fmt.Errorf("subscription template with an empty name")
		case strings.TrimSpace(tpl.TemplateID) == "":
			return fmt.Errorf("subscription template %q: missing templateId", name)
		case len(tpl.Data) == 0:
			return fmt.Errorf("subscription template %q: no data fields", name)
		case strings.HasPrefix(tpl.Page, "/"):
			return fmt.Errorf("subscription template %q: page %q: want a path without a leading slash", name, tpl.Page)
		}
		for key, value := range tpl.Data {
			if !subscribeField.MatchString(key) {
				return fmt.Errorf("subscription template %q: field %q: want a kind and a number, like thing1", name, key)
			}
			if strings.TrimSpace(value) == "" {
				return fmt.Errorf("subscription template %q: field %q: empty value", name, key)
			}
		}
	}
	return nil
}

// fill renders a template's fields for a notification, each cut to what its kind allows.
func (tpl SubscribeTemplate) fill(n Notification) map[string]map[string]string {
	vars := map[string]string{"message": n.Text}
	for k, v := range n.Vars {
		vars[k] = v
	}
	data := make(map[string]map[string]string, len(tpl.Data))
	for key, text := range tpl.Data {
		value := placeholder.ReplaceAllStringFunc(text, func(m string) string { return vars[m[2:len(m)-2]] })
		kind := strings.TrimRight(key, "0123456789")
		data[key] = map[string]string{"value": cut(value, subscribeLimits[kind])}
	}
	return data
}

// cut shortens s to at most limit characters (0: no limit), marking the cut with an ellipsis.
func cut(s string, limit int) string {
	if limit == 0 || utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// MiniProgram sends WeChat mini-program subscription messages (subscribeMessage.send) to the
// member's openid in the app AppID, with an access token from stable_token cached until it expires.
type MiniProgram struct {
	URL, AppID, Secret string
	// State is miniprogram_state, the app version the message opens: formal, trial or developer.
	State     string
	Templates SubscribeTemplates
	Members   Members
	Client    *http.Client
	Now       func() time.Time

	tokens *tokenCache
}

// NewMiniProgram prepares the token cache.
func NewMiniProgram(m MiniProgram) MiniProgram {
	m.tokens = &tokenCache{fetch: m.fetchToken, now: m.Now}
	return m
}

// fetchToken gets the stable access token. Without force_refresh stable_token returns the token
// still valid at WeChat, so when that is the very token WeChat just refused (revoked), it asks
// again with force_refresh (limited per day, hence not first).
// getStableAccessToken: developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-access-token/getStableAccessToken.html
func (m MiniProgram) fetchToken(ctx context.Context, force bool, rejected string) (string, time.Duration, error) {
	token, ttl, err := m.stableToken(ctx, false)
	if err == nil && force && token == rejected {
		token, ttl, err = m.stableToken(ctx, true)
	}
	return token, ttl, err
}

func (m MiniProgram) stableToken(ctx context.Context, force bool) (string, time.Duration, error) {
	body, err := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": m.AppID, "secret": m.Secret, "force_refresh": force})
	if err != nil {
		return "", 0, err
	}
	raw, err := post(ctx, m.Client, http.MethodPost, strings.TrimRight(m.URL, "/")+"/cgi-bin/stable_token", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", 0, fmt.Errorf("wechat stable_token: %w", err)
	}
	var answer struct {
		ErrCode     int    `json:"errcode"`
		ErrMsg      string `json:"errmsg"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	switch err := json.Unmarshal(raw, &answer); {
	case err == nil && answer.ErrCode == 0 && answer.AccessToken != "":
		return answer.AccessToken, time.Duration(answer.ExpiresIn) * time.Second, nil
	case answer.ErrCode == -1 || answer.ErrCode == 45009:
		return "", 0, fmt.Errorf("wechat stable_token: %d %s", answer.ErrCode, answer.ErrMsg)
	}
	return "", 0, fmt.Errorf("%w: wechat stable_token: %d %s", ErrRejected, answer.ErrCode, answer.ErrMsg)
}

// wechatLang is the lang of the message per our locale.
var wechatLang = map[string]string{"zh-CN": "zh_CN", "en": "en_US"}

// Deliver implements Sink.
func (m MiniProgram) Deliver(ctx context.Context, n Notification) error {
	tpl, ok := m.Templates[n.Template]
	if !ok {
		return fmt.Errorf("%w: mini-program message %s: no subscription template mapped for %q", ErrRejected, n.ID, n.Template)
	}
	to, err := address(ctx, m.Members, n.OneID, identity.WeChatOpenID, m.AppID)
	if err != nil {
		return err
	}
	lang, ok := wechatLang[n.Locale]
	if !ok {
		lang = "zh_CN"
	}
	// Request fields: subscribeMessage.send, developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html
	req := map[string]any{"touser": to, "template_id": tpl.TemplateID, "data": tpl.fill(n), "miniprogram_state": m.State, "lang": lang}
	if tpl.Page != "" {
		req["page"] = tpl.Page
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("mini-program message %s: %w", n.ID, err)
	}
	code, msg, err := m.call(ctx, "/cgi-bin/message/subscribe/send", body)
	switch {
	case err != nil:
		return fmt.Errorf("mini-program message %s: %w", n.ID, err)
	case code == 0:
		return nil
	case code == 43101:
		return fmt.Errorf("%w: mini-program message %s: 43101 the member refused or used up the subscription to this template", ErrRejected, n.ID)
	case code == -1 || code == 45009:
		return fmt.Errorf("mini-program message %s: %d %s", n.ID, code, msg)
	}
	return fmt.Errorf("%w: mini-program message %s: %d %s", ErrRejected, n.ID, code, msg)
}

// call POSTs to a WeChat API path with the access token, fetching a new token once when WeChat
// says it is invalid (40001, 40014) or expired (42001).
func (m MiniProgram) call(ctx context.Context, path string, body []byte) (int, string, error) {
	for attempt := range 2 {
		token, err := m.tokens.get(ctx, attempt > 0)
		if err != nil {
			return 0, "", err
		}
		u := strings.TrimRight(m.URL, "/") + path + "?access_token=" + url.QueryEscape(token)
		raw, err := post(ctx, m.Client, http.MethodPost, u, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		var r struct {
			ErrCode int    `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return 0, "", fmt.Errorf("%w: wechat %s answered %.200s", ErrRejected, path, raw)
		}
		if r.ErrCode != 40001 && r.ErrCode != 40014 && r.ErrCode != 42001 {
			return r.ErrCode, r.ErrMsg, nil
		}
	}
	return 0, "", fmt.Errorf("wechat %s: the access token kept being refused", path)
}
