package match

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const thePhone = "13812345678"

// rawForms are what a phone number is reversed from in seconds: itself and its plain hashes.
func rawForms(phone string) []string {
	return []string{phone, identity.PhoneSHA256(phone), identity.PhoneMD5(phone)}
}

// TestPlatformHashesMeetThePhoneButOnlyKeyedValuesLeave: JD's MD5 and Tmall's SHA-256 of a phone
// meet the plaintext phone a store sends later (one member), while identity.resolved, the member,
// the identity documents and the receipts hold only keyed values: nothing a guess at the phone can
// be checked against without the key.
func TestPlatformHashesMeetThePhoneButOnlyKeyedValuesLeave(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		jd := f.oneID(t, order(t, "e1", "jd", id("phone_md5", strings.ToUpper(identity.PhoneMD5(thePhone))), id("jd_pin", "pin-1")))
		tmall := f.oneID(t, order(t, "e2", "tmall", id("phone_sha256", identity.PhoneSHA256(thePhone))))
		require.NotEqual(t, jd, tmall, "two hashes of one phone cannot meet without it")
		outs := f.handle(t, order(t, "e3", "pos", phone("+86 "+thePhone)))
		require.Contains(t, outs, events.MemberMerged, "the plaintext phone yields both keyed hashes and joins them")
		r := resolvedOf(t, []cloudevents.Event{outs[events.IdentityResolved]})
		assert.Equal(t, jd, r.OneID)
		assert.Equal(t, jd, f.oneID(t, order(t, "e4", "tmall", id("phone_sha256", identity.PhoneSHA256(thePhone)))), "and the hash meets it again")

		sha := f.h.Keyer.Current(id("phone_sha256", identity.PhoneSHA256(thePhone)))
		md5 := f.h.Keyer.Current(id("phone_md5", identity.PhoneMD5(thePhone)))
		assert.ElementsMatch(t, []events.Identity{{Type: "phone_masked", Value: "138****5678"}, sha.Identity, md5.Identity}, r.Identities,
			"got identities on the bus, want the mask and the keyed hashes")
		assert.ElementsMatch(t, []string{sha.Key, md5.Key}, r.IdentityKeys, "a phone and its SHA-256 share a key")
		assert.Equal(t, r.Identities, r.Order.Identities, "the source data carries the same keyed identities")

		m := f.member(t, jd)
		for _, si := range m.Identities {
			if identity.IsPhoneHash(si.Type) {
				assert.True(t, identity.IsKeyed(si.Value), "%s: got stored value %q, want keyed", si.Type, si.Value)
				raw, err := f.h.Keys.Open(si.Sealed, si.Type)
				require.NoError(t, err, "the platform's hash is kept sealed, for a rekey")
				assert.Equal(t, map[string]string{"phone_sha256": identity.PhoneSHA256(thePhone), "phone_md5": identity.PhoneMD5(thePhone)}[si.Type], raw)
			}
		}
		assert.Empty(t, storetest.Holding(t, s, rawForms(thePhone)...), "no plaintext phone or raw hash at rest")
		receipts, err := s.Query(context.Background(), store.Query{Collection: receipt.Collection})
		require.NoError(t, err)
		assert.Len(t, receipts, 4, "the receipts are there, keyed")
	})
}

// TestLookupByTheOlderKeyThenRekeyMovesEverything: after a rotation (a new current key, the old one
// still listed) an identity stored under the old key is found and kept as it is; a new one gets
// the new key; the rekey moves every member and identity document to the new key, keeping the old
// keys as former ones (orders hold them; a split names them); then the old key can go.
func TestLookupByTheOlderKeyThenRekeyMovesEverything(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		o := newOperator(t, s)
		ctx := context.Background()
		a := o.oneID(t, order(t, "e1", "jd", phone(thePhone), id("jd_pin", "pin-1")))
		old := o.h.Keyer
		pinOld := old.Key(id("jd_pin", "pin-1"))

		current := identity.NewKey("id2")
		rotated, err := identity.ParseKeys(current + "," + o.idKeysSpec)
		require.NoError(t, err)
		o.h.Keyer = rotated
		out := o.handle(t, order(t, "e2", "tmall", id("phone_sha256", identity.PhoneSHA256(thePhone)), id("tmall_omid", "omid-1")))
		r := resolvedOf(t, []cloudevents.Event{out[events.IdentityResolved]})
		assert.Equal(t, a, r.OneID, "found under the older key")
		assert.Contains(t, r.Identities, old.Current(id("phone_sha256", identity.PhoneSHA256(thePhone))).Identity, "kept in the form the store knows")
		assert.Contains(t, r.IdentityKeys, rotated.Key(id("tmall_omid", "omid-1")), "a new identity gets the current key")
		assert.Len(t, o.member(t, a).Identities, 5, "phone, sha256, md5, pin and omid: nothing doubled by the rotation")

		var rk Rekey
		require.Equal(t, http.StatusOK, o.do(t, http.MethodPost, "/v1/admin/identities:rekey", &rk))
		assert.Equal(t, Rekey{Members: 1, Rekeyed: 4, KeyID: "id2"}, rk, "phone, sha256, md5 and pin were under id1")
		for _, si := range o.member(t, a).Identities {
			assert.Equal(t, "id2", identity.KeyID(si.Key), "%s: got key %s", si.Type, si.Key)
		}
		var link member.IdentityLink
		require.ErrorIs(t, s.Get(ctx, member.Identities, pinOld, &link), store.ErrNotFound, "the old identity document moved")
		require.NoError(t, s.Get(ctx, member.Identities, rotated.Key(id("jd_pin", "pin-1")), &link))
		assert.Equal(t, a, link.OneID)
		require.Equal(t, http.StatusOK, o.do(t, http.MethodPost, "/v1/admin/identities:rekey", &rk))
		assert.Zero(t, rk.Rekeyed, "nothing left under the old key")

		o.h.Keyer, err = identity.ParseKeys(current)
		require.NoError(t, err)
		assert.Equal(t, a, o.oneID(t, order(t, "e3", "youzan", id("phone_md5", identity.PhoneMD5(thePhone)))), "found with the old key retired")

		var split events.MemberSplitData
		body := `{"identities":[{"type":"jd_pin","value":"pin-1"}],"reason":"shared account"}`
		require.Equal(t, http.StatusOK, o.post(t, "/v1/members/"+a+":split", body, &split))
		assert.ElementsMatch(t, []string{o.h.Keyer.Key(id("jd_pin", "pin-1")), pinOld}, split.IdentityKeys,
			"a split names the former key too: orders resolved before the rekey hold it")
	})
}

// TestErasureLeavesNoCopyInTheStore: after an erasure no document of any collection holds the
// member's phone, its raw or keyed hashes, or its channel ids — not the member, the identity
// documents, the receipts of its events, nor an event held for it in quarantine.
func TestErasureLeavesNoCopyInTheStore(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		o := newOperator(t, s)
		a := o.oneID(t, order(t, "e1", "jd", phone(thePhone), id("jd_pin", "pin-erased")))
		o.oneID(t, order(t, "e2", "tmall", id("phone_sha256", identity.PhoneSHA256(thePhone)), id("tmall_omid", "omid-erased")))
		var cards []events.Identity
		for _, c := range []string{"card-1", "card-2", "card-3"} {
			cards = append(cards, id("pos_card", c))
			o.oneID(t, order(t, c, "pos", id("pos_card", c)))
		}
		held := order(t, "joins-4", "pos", append(cards, id("jd_pin", "pin-erased"))...)
		assert.Empty(t, o.handle(t, held), "four members: held for review")

		needles := append(rawForms(thePhone), "pin-erased", "omid-erased")
		for _, f := range o.h.Keyer.Forms(phone(thePhone)) {
			needles = append(needles, f.Key)
		}
		for _, i := range []events.Identity{id("phone_md5", identity.PhoneMD5(thePhone)), id("jd_pin", "pin-erased"), id("tmall_omid", "omid-erased")} {
			needles = append(needles, o.h.Keyer.Key(i))
		}
		require.NotEmpty(t, storetest.Holding(t, s, needles...), "before: the member holds them")

		var er Erasure
		require.Equal(t, http.StatusOK, o.do(t, http.MethodDelete, "/v1/members/"+a+"/personal-data", &er))
		assert.Empty(t, storetest.Holding(t, s, needles...), "after: no copy anywhere")
		var q member.Quarantined
		require.NoError(t, s.Get(context.Background(), member.Quarantine, receipt.Key(Name, held), &q))
		assert.Equal(t, member.QuarantineRejected, q.Status, "a held event of an erased member cannot be released")
		assert.Empty(t, q.Sealed)

		// A replay from before stays out: its tombstones are found.
		assert.Empty(t, o.handle(t, orderAt(t, "e2-again", "tmall", t0, id("phone_sha256", identity.PhoneSHA256(thePhone)))))
		raw, err := json.Marshal(o.member(t, a))
		require.NoError(t, err)
		assert.NotContains(t, string(raw), "omid-erased")
	})
}

// post sends an operator request with a JSON body.
func (o *operator) post(t *testing.T, path, body string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, o.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer admin-secret")
	req.Header.Set("X-Omnimember-Operator", "ops@brand.example")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if into != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
	}
	return resp.StatusCode
}
