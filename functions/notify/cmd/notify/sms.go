package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/omnimember/omnimember/functions/notify"
	"github.com/omnimember/omnimember/shared/pii"
)

// smsConfig is the SMS channel's configuration: NOTIFY_SMS_PROVIDER picks aliyun or tencent (empty:
// no SMS channel), the provider's SMS_<PROVIDER>_* variables give keys (secrets, never logged),
// signature name and endpoint, NOTIFY_SMS_TEMPLATES_FILE maps our template names to the
// provider's approved template codes and their parameters in order.
type smsConfig struct {
	Provider  string
	Aliyun    notify.Aliyun
	Tencent   notify.Tencent
	SignName  string
	OptOut    string
	Templates map[string]notify.SMSTemplate
}

func loadSMSConfig() (smsConfig, error) {
	c := smsConfig{Provider: os.Getenv("NOTIFY_SMS_PROVIDER")}
	switch c.Provider {
	case "":
		return c, nil
	case "aliyun":
		c.Aliyun = notify.Aliyun{Endpoint: envOr("SMS_ALIYUN_ENDPOINT", "https://dysmsapi.aliyuncs.com"),
			AccessKeyID: os.Getenv("SMS_ALIYUN_ACCESS_KEY_ID"), AccessKeySecret: os.Getenv("SMS_ALIYUN_ACCESS_KEY_SECRET"),
			RegionID: envOr("SMS_ALIYUN_REGION_ID", "cn-hangzhou")}
		c.SignName, c.OptOut = os.Getenv("SMS_ALIYUN_SIGN_NAME"), envOr("SMS_ALIYUN_OPT_OUT_SUFFIX", notify.DefaultOptOutSuffix)
		if err := required("SMS_ALIYUN_ACCESS_KEY_ID", "SMS_ALIYUN_ACCESS_KEY_SECRET", "SMS_ALIYUN_SIGN_NAME"); err != nil {
			return c, err
		}
		if err := httpsURL("SMS_ALIYUN_ENDPOINT", c.Aliyun.Endpoint); err != nil {
			return c, err
		}
	case "tencent":
		c.Tencent = notify.Tencent{Endpoint: envOr("SMS_TENCENT_ENDPOINT", "https://sms.tencentcloudapi.com"),
			SecretID: os.Getenv("SMS_TENCENT_SECRET_ID"), SecretKey: os.Getenv("SMS_TENCENT_SECRET_KEY"),
			SDKAppID: os.Getenv("SMS_TENCENT_SDK_APP_ID"), Region: envOr("SMS_TENCENT_REGION", "ap-guangzhou")}
		c.SignName, c.OptOut = os.Getenv("SMS_TENCENT_SIGN_NAME"), envOr("SMS_TENCENT_OPT_OUT_SUFFIX", notify.DefaultOptOutSuffix)
		if err := required("SMS_TENCENT_SECRET_ID", "SMS_TENCENT_SECRET_KEY", "SMS_TENCENT_SDK_APP_ID", "SMS_TENCENT_SIGN_NAME"); err != nil {
			return c, err
		}
		if err := httpsURL("SMS_TENCENT_ENDPOINT", c.Tencent.Endpoint); err != nil {
			return c, err
		}
	default:
		return c, fmt.Errorf("NOTIFY_SMS_PROVIDER %q: want aliyun or tencent", c.Provider)
	}
	var err error
	c.Templates, err = loadSMSTemplates()
	return c, err
}

func loadSMSTemplates() (map[string]notify.SMSTemplate, error) {
	path := os.Getenv("NOTIFY_SMS_TEMPLATES_FILE")
	if path == "" {
		return nil, fmt.Errorf("NOTIFY_SMS_TEMPLATES_FILE: required with NOTIFY_SMS_PROVIDER (our template → provider template code)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_SMS_TEMPLATES_FILE: %w", err)
	}
	t, err := notify.ParseSMSTemplates(raw)
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_SMS_TEMPLATES_FILE %s: %w", path, err)
	}
	return t, nil
}

func required(names ...string) error {
	for _, n := range names {
		if os.Getenv(n) == "" {
			return fmt.Errorf("%s: required with NOTIFY_SMS_PROVIDER=%s", n, os.Getenv("NOTIFY_SMS_PROVIDER"))
		}
	}
	return nil
}

func httpsURL(name, v string) error {
	if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q: want an http(s) URL", name, v)
	}
	return nil
}

// sink builds the sms channel's sink; the phone is opened with the OMNIMEMBER_PII_KEYS keyring.
func (c smsConfig) sink(st notify.Store, client *http.Client) (notify.SMS, error) {
	keys, err := pii.FromEnv()
	if err != nil {
		return notify.SMS{}, fmt.Errorf("NOTIFY_SMS_PROVIDER needs the phones: %w", err)
	}
	var p notify.SMSProvider
	if c.Provider == "aliyun" {
		a := c.Aliyun
		a.Client, a.Now = client, time.Now
		p = a
	} else {
		t := c.Tencent
		t.Client, t.Now = client, time.Now
		p = t
	}
	return notify.SMS{Provider: p, Store: st, Keys: keys, SignName: c.SignName, Templates: c.Templates, OptOutSuffix: c.OptOut}, nil
}

// LogValue shows the configuration with key ids masked and secrets left out.
func (c smsConfig) LogValue() slog.Value {
	if c.Provider == "" {
		return slog.StringValue("off")
	}
	id, endpoint := c.Aliyun.AccessKeyID, c.Aliyun.Endpoint
	if c.Provider == "tencent" {
		id, endpoint = c.Tencent.SecretID, c.Tencent.Endpoint
	}
	return slog.GroupValue(slog.String("provider", c.Provider), slog.String("keyId", mask(id)), slog.String("endpoint", endpoint),
		slog.String("signName", c.SignName), slog.Int("templates", len(c.Templates)), slog.String("optOut", c.OptOut))
}

func mask(s string) string {
	if len(s) <= 4 {
		return "***"
	}
	return s[:4] + "***"
}
