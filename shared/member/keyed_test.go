package member_test

import (
	"context"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/teststores"
	"github.com/stretchr/testify/require"
)

// TestCheckKeyedRefusesAStoreFromBeforeKeyedIdentities: an older version's identity documents
// are keyed by an unkeyed SHA-256 (40 hex digits); a store holding one is refused with a message
// saying what to do, an empty or keyed one is fine.
func TestCheckKeyedRefusesAStoreFromBeforeKeyedIdentities(t *testing.T) {
	teststores.Each(t, member.Indexes, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		keys, err := identity.ParseKeys(identity.NewKey("t1"))
		require.NoError(t, err)
		require.NoError(t, member.CheckKeyed(ctx, s, keys), "an empty store")
		keyed := keys.Key(events.Identity{Type: identity.Phone, Value: "13812345678"})
		require.NoError(t, s.Set(ctx, member.Identities, keyed, member.IdentityLink{OneID: "om_a"}))
		require.NoError(t, member.CheckKeyed(ctx, s, keys), "a keyed store")
		other, err := identity.ParseKeys(identity.NewKey("t2"))
		require.NoError(t, err)
		require.ErrorContains(t, member.CheckKeyed(ctx, s, other), `keyed with key "t1"`, "a store keyed with a key not given")
		require.NoError(t, s.Delete(ctx, member.Identities, keyed))
		require.NoError(t, s.Set(ctx, member.Identities, "38aed9048140b0e437ea81461d9ea4524169f679", member.IdentityLink{OneID: "om_a"}))
		require.ErrorIs(t, member.CheckKeyed(ctx, s, keys), member.ErrUnkeyedStore)
	})
}
