package stack

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/scripts/chaos"
	"github.com/omnimember/omnimember/scripts/demo"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/store/storetest"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawForms are what a phone number is reversed from in seconds: itself, and its plain SHA-256 and
// MD5 (an 11-digit mobile number's hash falls to a few billion guesses).
func rawForms(phones ...string) []string {
	var out []string
	for _, p := range phones {
		out = append(out, p, identity.PhoneSHA256(p), identity.PhoneMD5(p))
	}
	return out
}

// TestNoRawPhoneHashRestsOrTravelsAfterMatch runs the demo and a generated multi-channel workload
// (plaintext phones in every format, SHA-256 only, MD5 only, refunds, duplicates) through the chain,
// then reads every document of every collection and every message left on the events stream: from
// match on, none holds a phone, nor its raw SHA-256 or MD5. The input events ingest accepted hold
// them (they are what platforms send), which shows the scan finds what it looks for.
func TestNoRawPhoneHashRestsOrTravelsAfterMatch(t *testing.T) {
	onEachStore(t, func(t *testing.T, opts Options) {
		s := start(t, opts)
		replayDemo(t, s)
		work := chaos.Generate(12, 40, 5)
		for _, ev := range work.Events {
			status, err := apiClient(s).Post(context.Background(), ev)
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, status)
		}
		waitQuiet(t, s)
		var phones []string
		for _, p := range demo.People {
			phones = append(phones, p.Phone)
		}
		for _, p := range work.People {
			phones = append(phones, p.Phone)
		}
		needles := rawForms(phones...)
		assert.Empty(t, storetest.Holding(t, s.Store, needles...), "at rest")

		inputs, after := 0, 0
		for _, m := range brokertest.Messages(t, s.Runtime.JetStream(), stream.Events, ">") {
			ev, err := cenats.FromMsg(m.Headers(), m.Data())
			require.NoError(t, err)
			raw := string(m.Data()) + ev.ID() + ev.Source()
			for _, n := range needles {
				if !strings.Contains(raw, n) {
					continue
				}
				if slices.Contains(match.Consumes, ev.Type()) {
					inputs++
					continue
				}
				after++
				t.Errorf("%s %s carries %s", ev.Type(), ev.ID(), n)
			}
		}
		assert.NotZero(t, inputs, "the platforms' events carry phones and raw hashes: the scan sees them")
		assert.Zero(t, after, "from match on")
		p, err := apiClient(s).Lookup(context.Background(), demo.People[0].Phone)
		require.NoError(t, err)
		assert.Equal(t, demoTruth[demo.People[0].Phone].points, p.Points.Balance, "the hashed Tmall order still met the JD phone")
	})
}

// TestErasureLeavesNoCopyOfTheMember creates a member through the whole chain from every kind of
// channel identity, erases it, and reads every document of every collection of the store: none
// holds its phone, the phone's raw or keyed hashes, or any of its channel identities (or their
// keys); its points and orders stay as anonymous aggregates, and another member is untouched.
func TestErasureLeavesNoCopyOfTheMember(t *testing.T) {
	onEachStore(t, func(t *testing.T, opts Options) {
		opts.AdminToken = "ops-token"
		s := start(t, opts)
		const phone = "13566667777"
		id := func(typ, v string) events.Identity { return events.Identity{Type: typ, Value: v} }
		scoped := func(typ, v, scope string) events.Identity { return events.Identity{Type: typ, Value: v, Scope: scope} }
		channelIDs := []events.Identity{id("pos_card", "card-erase"), scoped("tmall_ouid", "ouid-erase", "shop"), id("tmall_omid", "omid-erase"),
			id("jd_pin", "pin-erase"), id("wechat_unionid", "wxu-erase"), scoped("wechat_openid", "wxo-erase", "wx-app"), id("app_user_id", "app-erase"),
			id("anonymous_id", "anon-erase")}
		post(t, s, orderEvent(t, "e-pos", "pos", 120000, id("phone", phone), channelIDs[0]))
		post(t, s, orderEvent(t, "e-tmall", "tmall", 80000, id("phone_sha256", identity.PhoneSHA256(phone)), channelIDs[1], channelIDs[2]))
		post(t, s, orderEvent(t, "e-jd", "jd", 50000, id("phone_md5", identity.PhoneMD5(phone)), channelIDs[3]))
		registered, err := events.New(events.MemberRegistered, "e-wx", "wechat/wx-app", time.Now(), events.MemberRegisteredData{Channel: "wechat",
			ShopID: "wx-app", RegisteredAt: time.Now().Add(-time.Minute), Identities: []events.Identity{channelIDs[4], channelIDs[5], id("phone", "+86 "+phone)}})
		require.NoError(t, err)
		post(t, s, registered)
		viewed, err := events.New(events.InteractionRecorded, "e-app", "app/ios", time.Now(), events.InteractionRecordedData{Channel: "app",
			Kind: "live_view", OccurredAt: time.Now().Add(-time.Minute), Identities: []events.Identity{channelIDs[6], channelIDs[7], id("phone", phone)}})
		require.NoError(t, err)
		post(t, s, viewed)
		refund, err := events.New(events.OrderRefunded, "e-pos-rf", "pos/shop", time.Now(), events.OrderRefundedData{OrderID: "o-e-pos",
			RefundID: "rf-1", Channel: "pos", AmountFen: 20000, RefundedAt: time.Now().Add(-time.Minute), Identities: []events.Identity{channelIDs[0]}})
		require.NoError(t, err)
		post(t, s, refund)
		post(t, s, orderEvent(t, "e-other", "pos", 30000, id("phone", "13900001111"), id("pos_card", "card-other")))

		m := lookup(t, s, "phone", phone)
		require.Empty(t, m.MergedFrom, "every hash met the phone: one member from the start")
		needles := rawForms(phone)
		keys := opts.IdentityKeys
		for _, f := range keys.Forms(id("phone", phone)) {
			needles = append(needles, f.Key) // also the phone_sha256's keyed value
		}
		needles = append(needles, keys.Key(id("phone_md5", identity.PhoneMD5(phone))))
		for _, c := range channelIDs {
			needles = append(needles, c.Value, keys.Key(c))
		}
		require.NotEmpty(t, storetest.Holding(t, s.Store, needles...), "before the erasure the store holds them")

		req, err := http.NewRequest(http.MethodDelete, "http://"+s.Addr+"/v1/members/"+m.OneID+"/personal-data", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer ops-token")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		waitQuiet(t, s)

		assert.Empty(t, storetest.Holding(t, s.Store, needles...), "after the erasure: no copy in any collection")
		var acct member.Account
		require.NoError(t, s.Store.Get(context.Background(), member.Accounts, m.OneID, &acct))
		assert.Equal(t, []int64{m.Points.Balance, m.Orders.Count, m.Orders.NetAmountFen}, []int64{acct.Balance, acct.OrderCount, acct.NetAmountFen},
			"got points, orders and amount after, want them as before")
		assert.NotEmpty(t, storetest.Holding(t, s.Store, "card-other"), "another member keeps its identities")
	})
}

// TestStartRefusesDataFromBeforeKeyedIdentities: a data directory an older make run wrote (identity
// documents under unkeyed SHA-256 keys, raw phone hashes beside them) is refused with the error
// make run turns into "run make clean", not served half-keyed.
func TestStartRefusesDataFromBeforeKeyedIdentities(t *testing.T) {
	dir := t.TempDir()
	old, err := embedded.Open(filepath.Join(dir, "omnimember.db"), embedded.Options{})
	require.NoError(t, err)
	require.NoError(t, old.Set(context.Background(), member.Identities, "38aed9048140b0e437ea81461d9ea4524169f679", member.IdentityLink{OneID: "om_a"}))
	require.NoError(t, old.Close())
	_, err = Start(testOptions(t, dir))
	require.ErrorIs(t, err, member.ErrUnkeyedStore)
}
