package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/omnimember/omnimember/functions/notify"
)

// channels is the configuration of the member-facing channels other than the outbox: each is
// configured when its first variable is set, and then must be complete.
type channels struct {
	WebhookURL, WebhookSecret string // NOTIFY_WEBHOOK_URL, NOTIFY_WEBHOOK_SECRET

	WeComURL, WeComCorpID, WeComSecret, WeComSender string // NOTIFY_WECOM_*

	MiniURL, MiniAppID, MiniSecret, MiniState string // NOTIFY_MINIPROGRAM_*
	MiniTemplatesFile                         string // NOTIFY_MINIPROGRAM_TEMPLATES_FILE
	MiniTemplates                             notify.SubscribeTemplates

	SMTPAddr, SMTPUsername, SMTPPassword, SMTPFrom, SMTPTLS string // NOTIFY_SMTP_*
}

// loadChannels reads NOTIFY_WEBHOOK_*, NOTIFY_WECOM_*, NOTIFY_MINIPROGRAM_* and NOTIFY_SMTP_*
// and validates every channel that is configured.
func loadChannels(getenv func(string) string) (channels, error) {
	or := func(name, fallback string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fallback
	}
	c := channels{WebhookURL: getenv("NOTIFY_WEBHOOK_URL"), WebhookSecret: getenv("NOTIFY_WEBHOOK_SECRET"),
		WeComURL: or("NOTIFY_WECOM_URL", "https://qyapi.weixin.qq.com"), WeComCorpID: getenv("NOTIFY_WECOM_CORP_ID"),
		WeComSecret: getenv("NOTIFY_WECOM_SECRET"), WeComSender: getenv("NOTIFY_WECOM_SENDER"),
		MiniURL: or("NOTIFY_MINIPROGRAM_URL", "https://api.weixin.qq.com"), MiniAppID: getenv("NOTIFY_MINIPROGRAM_APP_ID"),
		MiniSecret: getenv("NOTIFY_MINIPROGRAM_SECRET"), MiniState: or("NOTIFY_MINIPROGRAM_STATE", "formal"),
		MiniTemplatesFile: getenv("NOTIFY_MINIPROGRAM_TEMPLATES_FILE"),
		SMTPAddr:          getenv("NOTIFY_SMTP_ADDR"), SMTPUsername: getenv("NOTIFY_SMTP_USERNAME"), SMTPPassword: getenv("NOTIFY_SMTP_PASSWORD"),
		SMTPFrom: getenv("NOTIFY_SMTP_FROM"), SMTPTLS: getenv("NOTIFY_SMTP_TLS")}
	err := errors.Join(c.validateWebhook(), c.validateWeCom(), c.loadMiniProgram(), c.validateSMTP())
	return c, err
}

func httpURL(name, raw string) error {
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q: want an http(s) URL", name, raw)
	}
	return nil
}

func (c *channels) validateWebhook() error {
	if c.WebhookURL == "" && c.WebhookSecret == "" {
		return nil
	}
	if err := httpURL("NOTIFY_WEBHOOK_URL", c.WebhookURL); err != nil {
		return err
	}
	if len(c.WebhookSecret) < 16 {
		return fmt.Errorf("NOTIFY_WEBHOOK_SECRET: want at least 16 characters")
	}
	return nil
}

func (c *channels) validateWeCom() error {
	switch {
	case c.WeComCorpID == "" && c.WeComSecret == "":
		return nil
	case c.WeComCorpID == "" || c.WeComSecret == "":
		return fmt.Errorf("NOTIFY_WECOM_CORP_ID and NOTIFY_WECOM_SECRET: set both (the secret of 客户联系) or neither")
	}
	return httpURL("NOTIFY_WECOM_URL", c.WeComURL)
}

func (c *channels) loadMiniProgram() error {
	if c.MiniAppID == "" && c.MiniSecret == "" && c.MiniTemplatesFile == "" {
		return nil
	}
	if c.MiniAppID == "" || c.MiniSecret == "" || c.MiniTemplatesFile == "" {
		return fmt.Errorf("NOTIFY_MINIPROGRAM_APP_ID, NOTIFY_MINIPROGRAM_SECRET and NOTIFY_MINIPROGRAM_TEMPLATES_FILE: set all three or none")
	}
	if !slices.Contains([]string{"formal", "trial", "developer"}, c.MiniState) {
		return fmt.Errorf("NOTIFY_MINIPROGRAM_STATE %q: want formal, trial or developer", c.MiniState)
	}
	raw, err := os.ReadFile(c.MiniTemplatesFile)
	if err != nil {
		return fmt.Errorf("NOTIFY_MINIPROGRAM_TEMPLATES_FILE: %w", err)
	}
	if c.MiniTemplates, err = notify.ParseSubscribeTemplates(raw); err != nil {
		return fmt.Errorf("NOTIFY_MINIPROGRAM_TEMPLATES_FILE %s: %w", c.MiniTemplatesFile, err)
	}
	return httpURL("NOTIFY_MINIPROGRAM_URL", c.MiniURL)
}

func (c *channels) validateSMTP() error {
	if c.SMTPAddr == "" && c.SMTPFrom == "" && c.SMTPUsername == "" && c.SMTPPassword == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(c.SMTPAddr)
	if err != nil {
		return fmt.Errorf("NOTIFY_SMTP_ADDR %q: want host:port", c.SMTPAddr)
	}
	if c.SMTPTLS == "" {
		c.SMTPTLS = map[bool]string{true: "implicit", false: "starttls"}[port == "465"]
	}
	switch {
	case c.SMTPTLS != "starttls" && c.SMTPTLS != "implicit":
		return fmt.Errorf("NOTIFY_SMTP_TLS %q: want starttls or implicit", c.SMTPTLS)
	case (c.SMTPUsername == "") != (c.SMTPPassword == ""):
		return fmt.Errorf("NOTIFY_SMTP_USERNAME and NOTIFY_SMTP_PASSWORD: set both or neither")
	}
	if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
		return fmt.Errorf("NOTIFY_SMTP_FROM %q: %v", c.SMTPFrom, err)
	}
	return nil
}

// names lists the channels a notification can use: the outbox and every configured channel.
func (c channels) names() []string {
	names := []string{"outbox"}
	for name, on := range map[string]bool{"webhook": c.WebhookURL != "", "wecom": c.WeComCorpID != "", "miniprogram": c.MiniAppID != "", "email": c.SMTPAddr != ""} {
		if on {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// sinks builds the configured channels' sinks. WeCom messages share the level sync's client and
// token cache when both use the same corp and secret.
func (c channels) sinks(client *http.Client, members notify.Members, syncSinks map[string]any) map[string]any {
	out := map[string]any{}
	if c.WebhookURL != "" {
		out["webhook"] = notify.Webhook{URL: c.WebhookURL, Secret: []byte(c.WebhookSecret), Client: client, Now: time.Now}
	}
	if c.WeComCorpID != "" {
		api, ok := syncSinks[notify.SyncWeCom].(notify.WeCom)
		if !ok || api.CorpID != c.WeComCorpID || api.Secret != c.WeComSecret || api.URL != c.WeComURL {
			api = notify.NewWeCom(notify.WeCom{URL: c.WeComURL, CorpID: c.WeComCorpID, Secret: c.WeComSecret, Client: client, Now: time.Now})
		}
		out["wecom"] = notify.WeComContact{API: api, Sender: c.WeComSender, Members: members}
	}
	if c.MiniAppID != "" {
		out["miniprogram"] = notify.NewMiniProgram(notify.MiniProgram{URL: c.MiniURL, AppID: c.MiniAppID, Secret: c.MiniSecret,
			State: c.MiniState, Templates: c.MiniTemplates, Members: members, Client: client, Now: time.Now})
	}
	if c.SMTPAddr != "" {
		out["email"] = notify.Email{Addr: c.SMTPAddr, Username: c.SMTPUsername, Password: c.SMTPPassword, From: c.SMTPFrom,
			ImplicitTLS: c.SMTPTLS == "implicit", Subjects: notify.DefaultSubjects, Now: time.Now}
	}
	return out
}

// logValue describes the configured channels for the start-up log: no secret, and the SMTP
// account and sender masked.
func (c channels) logValue() slog.Attr {
	var attrs []any
	if c.WebhookURL != "" {
		attrs = append(attrs, slog.String("webhook", c.WebhookURL))
	}
	if c.WeComCorpID != "" {
		attrs = append(attrs, slog.Group("wecom", "url", c.WeComURL, "corp", c.WeComCorpID, "sender", c.WeComSender))
	}
	if c.MiniAppID != "" {
		names := make([]string, 0, len(c.MiniTemplates))
		for name := range c.MiniTemplates {
			names = append(names, name)
		}
		sort.Strings(names)
		attrs = append(attrs, slog.Group("miniprogram", "url", c.MiniURL, "app", c.MiniAppID, "state", c.MiniState, "templates", names))
	}
	if c.SMTPAddr != "" {
		from, _ := mail.ParseAddress(c.SMTPFrom)
		attrs = append(attrs, slog.Group("email", "addr", c.SMTPAddr, "tls", c.SMTPTLS, "user", notify.MaskEmail(c.SMTPUsername),
			"from", notify.MaskEmail(from.Address)))
	}
	return slog.Group("channels", attrs...)
}
