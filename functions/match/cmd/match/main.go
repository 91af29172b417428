// Command match runs the match function alone: JetStream consumer of channel events, writer of members.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

func main() { runtime.Main(match.Name, run) }

// run reads the configuration — runtime (NATS_URL, ...), store (STORE, ...), the PII keyring
// (OMNIMEMBER_PII_KEYS), the identity keys (OMNIMEMBER_IDENTITY_KEYS), merge rules (IDENTITY_RULES_FILE), the ladder (LOYALTY_RULES_FILE) and the
// operator token (OMNIMEMBER_ADMIN_TOKEN) — once, then serves.
func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	keys, err := pii.FromEnv()
	if err != nil {
		return err
	}
	keyer, err := identity.KeysFromEnv()
	if err != nil {
		return err
	}
	rules, err := identity.RulesFromEnv()
	if err != nil {
		return err
	}
	loyaltyRules, err := loyalty.FromEnv() // the ladder lives in the loyalty rules
	if err != nil {
		return err
	}
	ladder := loyaltyRules.Ladder()
	st, sc, err := backend.OpenFromEnv(context.Background(), member.Indexes)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := member.CheckKeyed(context.Background(), st, keyer); err != nil {
		return err
	}
	h := &match.Handler{Store: st, Keys: keys, Keyer: keyer, Rules: rules, Ladder: ladder, Now: time.Now, AdminToken: os.Getenv(runtime.AdminTokenEnv)}
	settings := slog.Group("match", "store", sc, "piiKeys", keys, "identityKeys", keyer, "rules", rules.Describe(), "adminEndpoints", h.AdminToken != "")
	return runtime.Run(rt, settings, h.Function())
}
