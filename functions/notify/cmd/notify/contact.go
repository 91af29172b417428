package main

import (
	"fmt"
	"os"
	"time"

	"github.com/omnimember/omnimember/functions/notify"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/runtime"
)

// contactConfig is the rules of contact and the routes that change contact state:
// NOTIFY_CONTACT_RULES_FILE replaces the built-in contact.json, OMNIMEMBER_API_TOKEN guards PUT
// /v1/members/{oneId}/consent, NOTIFY_SMS_CALLBACK_TOKEN guards the SMS callbacks,
// NOTIFY_DEFERRED_POLL is how often deferred messages are looked at.
type contactConfig struct {
	Rules         contact.Rules
	APIToken      string // a secret; never logged
	CallbackToken string // a secret; never logged
	PollEvery     time.Duration
}

func loadContactConfig() (contactConfig, error) {
	c := contactConfig{Rules: notify.DefaultRules(), APIToken: os.Getenv(runtime.APITokenEnv),
		CallbackToken: os.Getenv("NOTIFY_SMS_CALLBACK_TOKEN"), PollEvery: 30 * time.Second}
	if path := os.Getenv("NOTIFY_CONTACT_RULES_FILE"); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("NOTIFY_CONTACT_RULES_FILE: %w", err)
		}
		if c.Rules, err = contact.Parse(raw); err != nil {
			return c, fmt.Errorf("NOTIFY_CONTACT_RULES_FILE %s: %w", path, err)
		}
	}
	if v := os.Getenv("NOTIFY_DEFERRED_POLL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return c, fmt.Errorf("NOTIFY_DEFERRED_POLL %q: want a duration of at least 1s", v)
		}
		c.PollEvery = d
	}
	if c.CallbackToken != "" && len(c.CallbackToken) < 16 {
		return c, fmt.Errorf("NOTIFY_SMS_CALLBACK_TOKEN: want at least 16 characters")
	}
	return c, nil
}
