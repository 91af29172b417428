package notify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Aliyun sends SMS through Aliyun (Alibaba Cloud) Dysmsapi SendSms, RPC style, signature v1
// (HMAC-SHA1). Endpoint is https://dysmsapi.aliyuncs.com unless a test or a VPC endpoint says
// otherwise.
type Aliyun struct {
	Endpoint        string
	AccessKeyID     string
	AccessKeySecret string
	RegionID        string
	Client          *http.Client
	Now             func() time.Time
}

// Name implements SMSProvider.
func (Aliyun) Name() string { return "aliyun" }

// aliyunEncode is the RFC 3986 percent-encoding the RPC signature requires: unreserved characters
// stay, space is %20 (not +), * is %2A and ~ stays (Aliyun "签名机制", step 1.b).
func aliyunEncode(s string) string {
	e := url.QueryEscape(s)
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(e)
}

// AliyunSignature is base64(HMAC-SHA1(secret + "&", METHOD + "&%2F&" + encode(sorted query)))
// over every parameter but Signature (Aliyun "签名机制", steps 1–3).
func AliyunSignature(method, secret string, params map[string]string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(method + "&" + aliyunEncode("/") + "&" + aliyunEncode(aliyunQuery(params))))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// aliyunQuery is the canonicalized query string: parameters sorted by name, each name and value
// encoded, joined with &.
func aliyunQuery(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = aliyunEncode(k) + "=" + aliyunEncode(params[k])
	}
	return strings.Join(parts, "&")
}

// Send implements SMSProvider: one signed POST of the SendSms action.
func (a Aliyun) Send(ctx context.Context, m SMSMessage) (string, error) {
	params, err := a.params(m)
	if err != nil {
		return "", err
	}
	body := "Signature=" + aliyunEncode(AliyunSignature(http.MethodPost, a.AccessKeySecret, params)) + "&" + aliyunQuery(params)
	req, err := newRequest(ctx, http.MethodPost, strings.TrimRight(a.Endpoint, "/")+"/", strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("aliyun request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := send(a.Client, req)
	if err != nil {
		return "", fmt.Errorf("post aliyun SendSms: %w", err)
	}
	defer resp.Body.Close()
	var out struct{ Code, Message, BizId, RequestId string }
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(raw, &out); err != nil || out.Code == "" {
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return "", fmt.Errorf("aliyun answered %d", resp.StatusCode)
		}
		return "", fmt.Errorf("%w: aliyun answered %d without a code", ErrRejected, resp.StatusCode)
	}
	return out.BizId, aliyunResult(out.Code, out.Message)
}

func (a Aliyun) params(m SMSMessage) (map[string]string, error) {
	vars := make(map[string]string, len(m.Params))
	for _, p := range m.Params {
		vars[p.Name] = p.Value
	}
	tp, err := json.Marshal(vars)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	return map[string]string{
		"AccessKeyId": a.AccessKeyID, "Action": "SendSms", "Format": "JSON", "RegionId": a.RegionID,
		"SignatureMethod": "HMAC-SHA1", "SignatureNonce": hex.EncodeToString(nonce), "SignatureVersion": "1.0",
		"Timestamp": a.Now().UTC().Format("2006-01-02T15:04:05Z"), "Version": "2017-05-25",
		"PhoneNumbers": m.Phone, "SignName": m.SignName, "TemplateCode": m.TemplateCode, "TemplateParam": string(tp),
		"OutId": m.OutID,
	}, nil
}

// aliyunRetryable are the SendSms codes a later attempt can get past: flow control and the
// provider's own failures. Every other code (an illegal number, an unapproved template or
// signature, a bad key) fails the notification at once.
var aliyunRetryable = []string{"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling", "isp.SYSTEM_ERROR",
	"isp.GATEWAY_ERROR", "SignatureNonceUsed", "ServiceUnavailable", "InternalError"}

func aliyunResult(code, message string) error {
	switch {
	case code == "OK":
		return nil
	case slices.Contains(aliyunRetryable, code) || strings.HasPrefix(code, "isp."):
		return fmt.Errorf("aliyun %s: %s", code, message)
	}
	return fmt.Errorf("%w: aliyun %s: %s", ErrRejected, code, message)
}
