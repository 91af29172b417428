package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tencent sends SMS through Tencent Cloud SMS SendSms (API 3.0, version 2021-01-11) signed with
// TC3-HMAC-SHA256. Endpoint is https://sms.tencentcloudapi.com unless a test says otherwise.
type Tencent struct {
	Endpoint  string
	SecretID  string
	SecretKey string
	SDKAppID  string
	Region    string
	Client    *http.Client
	Now       func() time.Time
}

// Name implements SMSProvider.
func (Tencent) Name() string { return "tencent" }

const (
	tc3Algorithm   = "TC3-HMAC-SHA256"
	tencentJSON    = "application/json; charset=utf-8"
	tencentService = "sms"
	tencentVersion = "2021-01-11"
)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// TC3Signature signs a POST to host with the content-type and host headers, as Tencent Cloud
// "Signature v3" describes: canonical request (step 1), string to sign with the credential scope
// date/service/tc3_request in UTC (step 2), key chain "TC3"+SecretKey → date → service →
// tc3_request (step 3). It returns the hex signature and the credential scope.
func TC3Signature(secretKey, service, host, contentType string, payload []byte, ts int64) (signature, scope string) {
	canonical := "POST\n/\n\n" + "content-type:" + contentType + "\nhost:" + host + "\n\n" + "content-type;host\n" + sha256Hex(payload)
	date := time.Unix(ts, 0).UTC().Format(time.DateOnly)
	scope = date + "/" + service + "/tc3_request"
	toSign := tc3Algorithm + "\n" + strconv.FormatInt(ts, 10) + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
	key := hmacSHA256(hmacSHA256(hmacSHA256([]byte("TC3"+secretKey), date), service), "tc3_request")
	return hex.EncodeToString(hmacSHA256(key, toSign)), scope
}

type tencentRequest struct {
	PhoneNumberSet   []string
	SmsSdkAppId      string
	SignName         string
	TemplateId       string
	TemplateParamSet []string
	SessionContext   string
}

type tencentResponse struct {
	Response struct {
		Error *struct{ Code, Message string }
		// SendStatusSet has one entry per number, each with its own code.
		SendStatusSet []struct{ SerialNo, PhoneNumber, Code, Message, SessionContext string }
		RequestId     string
	}
}

// Send implements SMSProvider: one signed SendSms call for one number (E.164, +86).
func (t Tencent) Send(ctx context.Context, m SMSMessage) (string, error) {
	params := make([]string, len(m.Params))
	for i, p := range m.Params {
		params[i] = p.Value
	}
	body, err := json.Marshal(tencentRequest{PhoneNumberSet: []string{"+86" + m.Phone}, SmsSdkAppId: t.SDKAppID,
		SignName: m.SignName, TemplateId: m.TemplateCode, TemplateParamSet: params, SessionContext: m.OutID})
	if err != nil {
		return "", err
	}
	req, err := t.request(ctx, body)
	if err != nil {
		return "", fmt.Errorf("%w: tencent request: %v", ErrRejected, err)
	}
	resp, err := send(t.Client, req)
	if err != nil {
		return "", fmt.Errorf("post tencent SendSms: %w", err)
	}
	defer resp.Body.Close()
	var out tencentResponse
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(raw, &out); err != nil {
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return "", fmt.Errorf("tencent answered %d", resp.StatusCode)
		}
		return "", fmt.Errorf("%w: tencent answered %d: %v", ErrRejected, resp.StatusCode, err)
	}
	if e := out.Response.Error; e != nil {
		return "", tencentResult(e.Code, e.Message)
	}
	if len(out.Response.SendStatusSet) != 1 {
		return "", fmt.Errorf("tencent answered %d statuses for one number (request %s)", len(out.Response.SendStatusSet), out.Response.RequestId)
	}
	s := out.Response.SendStatusSet[0]
	return s.SerialNo, tencentResult(s.Code, s.Message)
}

func (t Tencent) request(ctx context.Context, body []byte) (*http.Request, error) {
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return nil, err
	}
	ts := t.Now().Unix()
	sig, scope := TC3Signature(t.SecretKey, tencentService, u.Host, tencentJSON, body, ts)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.Endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", tc3Algorithm+" Credential="+t.SecretID+"/"+scope+", SignedHeaders=content-type;host, Signature="+sig)
	req.Header.Set("Content-Type", tencentJSON)
	req.Header.Set("X-TC-Action", "SendSms")
	req.Header.Set("X-TC-Version", tencentVersion)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-TC-Region", t.Region)
	return req, nil
}

// tencentRetryable are the code prefixes a later attempt can get past: the provider's internal
// errors, request-rate limits and a signature that expired on the way (clock skew). Everything
// else (an invalid number, an unapproved template or signature, a number on the blocklist, the
// per-number frequency limits, a bad key) fails the notification at once.
var tencentRetryable = []string{"InternalError", "RequestLimitExceeded", "AuthFailure.SignatureExpire"}

func tencentResult(code, message string) error {
	if strings.EqualFold(code, "Ok") {
		return nil
	}
	if slices.ContainsFunc(tencentRetryable, func(p string) bool { return strings.HasPrefix(code, p) }) {
		return fmt.Errorf("tencent %s: %s", code, message)
	}
	return fmt.Errorf("%w: tencent %s: %s", ErrRejected, code, message)
}
