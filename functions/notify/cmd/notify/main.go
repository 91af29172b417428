// Command notify runs the notify function alone: consumer of tier changes, points awards and
// notification requests; delivers to the outbox, a signed webhook, WeCom, the mini-program or email.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/omnimember/omnimember/functions/notify"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

type config struct {
	Runtime   runtime.Config
	Channel   string // NOTIFY_CHANNEL: where transactional messages go: outbox (default) or a configured channel
	Locale    string // NOTIFY_LOCALE: zh-CN (default) or en
	Channels  channels
	Templates notify.Templates
	Contact   contactConfig
	SMS       smsConfig
}

func loadConfig() (config, error) {
	c := config{Channel: envOr("NOTIFY_CHANNEL", "outbox"), Locale: envOr("NOTIFY_LOCALE", "zh-CN"),
		Templates: notify.DefaultTemplates()}
	var err error
	if c.Runtime, err = runtime.FromEnv(); err != nil {
		return c, err
	}
	if c.Contact, err = loadContactConfig(); err != nil {
		return c, err
	}
	if c.SMS, err = loadSMSConfig(); err != nil {
		return c, err
	}
	if c.Channels, err = loadChannels(os.Getenv); err != nil {
		return c, err
	}
	if path := os.Getenv("NOTIFY_TEMPLATES_FILE"); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("NOTIFY_TEMPLATES_FILE: %w", err)
		}
		if c.Templates, err = notify.ParseTemplates(raw); err != nil {
			return c, fmt.Errorf("NOTIFY_TEMPLATES_FILE %s: %w", path, err)
		}
	}
	return c, c.validate()
}

func (c config) validate() error {
	if !slices.Contains(notify.Locales, c.Locale) {
		return fmt.Errorf("NOTIFY_LOCALE %q: want one of %v", c.Locale, notify.Locales)
	}
	names := c.Channels.names()
	if c.SMS.Provider != "" {
		names = append(names, "sms")
	}
	if !slices.Contains(names, c.Channel) {
		return fmt.Errorf("NOTIFY_CHANNEL %q: want one of the configured channels %v", c.Channel, names)
	}
	return nil
}

// syncSinksFromEnv builds the platform sync adapters whose credentials are set (secrets from the
// environment, mounted from Kubernetes secrets): SYNC_TMALL_*, SYNC_DOUYIN_*, SYNC_WECOM_*,
// SYNC_MINIPROGRAM_*.
func syncSinksFromEnv(client *http.Client) (map[string]any, error) {
	out := map[string]any{}
	if key := os.Getenv("SYNC_TMALL_APP_KEY"); key != "" {
		out[notify.SyncTmall] = notify.TOP{URL: envOr("SYNC_TMALL_URL", "https://eco.taobao.com/router/rest"), AppKey: key,
			Secret: os.Getenv("SYNC_TMALL_SECRET"), Session: os.Getenv("SYNC_TMALL_SESSION"),
			SignMethod: envOr("SYNC_TMALL_SIGN_METHOD", "hmac-sha256"), Method: envOr("SYNC_TMALL_METHOD", "taobao.crm.member.sync"),
			Client: client, Now: time.Now}
	}
	if key := os.Getenv("SYNC_DOUYIN_APP_KEY"); key != "" {
		out[notify.SyncDouyin] = notify.Doudian{URL: envOr("SYNC_DOUYIN_URL", "https://openapi-fxg.jinritemai.com"), AppKey: key,
			Secret: os.Getenv("SYNC_DOUYIN_SECRET"), AccessToken: os.Getenv("SYNC_DOUYIN_ACCESS_TOKEN"),
			Method: envOr("SYNC_DOUYIN_METHOD", "member.level.sync"), Client: client, Now: time.Now}
	}
	if corp := os.Getenv("SYNC_WECOM_CORP_ID"); corp != "" {
		tags := map[string]string{}
		for _, pair := range strings.Split(os.Getenv("SYNC_WECOM_TAGS"), ",") {
			level, tag, ok := strings.Cut(pair, "=")
			if !ok {
				return nil, fmt.Errorf("SYNC_WECOM_TAGS %q: want level=tagid pairs separated by commas", pair)
			}
			tags[level] = tag
		}
		out[notify.SyncWeCom] = notify.NewWeCom(notify.WeCom{URL: envOr("SYNC_WECOM_URL", "https://qyapi.weixin.qq.com"), CorpID: corp,
			Secret: os.Getenv("SYNC_WECOM_SECRET"), StaffUserID: os.Getenv("SYNC_WECOM_STAFF_USER_ID"), TagByLevel: tags, Client: client, Now: time.Now})
	}
	if u := os.Getenv("SYNC_MINIPROGRAM_WEBHOOK_URL"); u != "" {
		out[notify.SyncMiniProgram] = notify.Webhook{URL: u, Secret: []byte(os.Getenv("SYNC_MINIPROGRAM_WEBHOOK_SECRET")), Client: client, Now: time.Now}
	}
	return out, nil
}

// keyerLog names the identity keys (never their bytes), or says there are none.
func keyerLog(k *identity.Keyer) any {
	if k == nil {
		return "none"
	}
	return k
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() { runtime.Main(notify.Name, run) }

func run() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	st, sc, err := backend.OpenFromEnv(context.Background(), notify.StoreIndexes(member.Indexes))
	if err != nil {
		return err
	}
	defer st.Close()
	client := &http.Client{Timeout: 10 * time.Second}
	syncSinks, err := syncSinksFromEnv(client)
	if err != nil {
		return err
	}
	sinks := cfg.Channels.sinks(client, st, syncSinks)
	sinks["outbox"] = notify.Outbox{}
	if cfg.SMS.Provider != "" {
		if sinks["sms"], err = cfg.SMS.sink(st, client); err != nil {
			return err
		}
	}
	syncChannels := map[string]string{}
	for idType, channel := range notify.DefaultSyncChannels {
		if sink, ok := syncSinks[channel]; ok {
			sinks[channel], syncChannels[idType] = sink, channel
		}
	}
	// SMS replies (opt-outs) find their member by the phone's keyed identity document.
	var keyer *identity.Keyer
	if cfg.Contact.CallbackToken != "" {
		if keyer, err = identity.KeysFromEnv(); err != nil {
			return fmt.Errorf("SMS callbacks (NOTIFY_SMS_CALLBACK_TOKEN): %w", err)
		}
	}
	h := &notify.Handler{Store: st, Sinks: sinks, Channel: cfg.Channel, SyncChannels: syncChannels, Locale: cfg.Locale,
		Templates: cfg.Templates, MaxAttempts: cfg.Runtime.MaxDeliver, Rules: cfg.Contact.Rules, PollEvery: cfg.Contact.PollEvery,
		APIToken: cfg.Contact.APIToken, Inbound: notify.Inbound{Token: cfg.Contact.CallbackToken}, Keyer: keyer, Now: time.Now}
	settings := slog.Group("notify", "store", sc, "channel", cfg.Channel, "locale", cfg.Locale, cfg.Channels.logValue(),
		"syncs", fmt.Sprint(syncChannels), "sms", cfg.SMS, "contactRules", cfg.Contact.Rules.TimeZone,
		"consentApi", cfg.Contact.APIToken != "", "smsCallbacks", cfg.Contact.CallbackToken != "", "identityKeys", keyerLog(keyer))
	return runtime.Run(cfg.Runtime, settings, h.Function())
}
