// Command profile runs the read API alone: GET /v1/members/{oneId} and GET /v1/members:lookup behind
// the reader tokens (OMNIMEMBER_READER_TOKENS[_FILE]), and the Tmall 会员通 SPI at
// POST /webhooks/tmall/member when TMALL_MEMBER_APP_KEY is set.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

func main() { runtime.Main(profile.Name, run) }

func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	rules, err := loyalty.FromEnv() // the ladder lives in the loyalty rules
	if err != nil {
		return err
	}
	ladder := rules.Ladder()
	keyer, err := identity.KeysFromEnv() // lookups key the identity they name, as match keyed it
	if err != nil {
		return err
	}
	st, sc, err := backend.OpenFromEnv(context.Background(), member.Indexes)
	if err != nil {
		return err
	}
	defer st.Close()
	tmall, err := profile.TmallMemberFromEnv(os.Getenv, runtime.NewLogger(rt.LogLevel))
	if err != nil {
		return err
	}
	readers, err := credential.ReadersFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	api := &profile.API{Store: st, Keyer: keyer, Ladder: ladder, Now: time.Now, Tmall: tmall, Readers: readers}
	return runtime.Run(rt, slog.Group("profile", "store", sc, "identityKeys", keyer, "tmallMember", tmall, "readers", readers), api.Function())
}
