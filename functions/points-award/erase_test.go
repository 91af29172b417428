package pointsaward

import (
	"context"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErasureDropsTheOrdersIdentityKeys: an order keeps the keys of the identities it came with
// (a split follows them); erasing its member drops them from its orders and from the orders of the
// members merged into it, while amounts and points stay, and other members' orders keep theirs.
func TestErasureDropsTheOrdersIdentityKeys(t *testing.T) {
	h, s := newHandler(t)
	ctx := context.Background()
	const carol = "om_cccccccccccccccccccc"
	for _, ev := range []struct{ id, oneID, order string }{{"e1", alice, "o1"}, {"e2", carol, "o2"}, {"e3", bob, "o3"}} {
		_, err := h.Handle(ctx, paid(t, ev.id, ev.oneID, ev.order, 10000))
		require.NoError(t, err)
	}
	keysOf := func(order string) []string {
		var o member.Order
		require.NoError(t, s.Get(ctx, member.Orders, member.OrderKey("tmall", order), &o))
		return o.IdentityKeys
	}
	require.Equal(t, []string{crmKey}, keysOf("o1"), "got the keys match resolved the order with")

	erased, err := events.New(events.MemberErased, "erase-"+alice, events.Source("match"), t0, events.MemberErasedData{
		OneID: alice, FormerOneIDs: []string{carol}, Identities: 2, By: "privacy@brand.example", RequestID: "erase-" + alice, ErasedAt: t0})
	require.NoError(t, err)
	for range 2 { // a redelivery changes nothing more
		_, err = h.Handle(ctx, erased)
		require.NoError(t, err)
	}
	assert.Empty(t, keysOf("o1"), "the erased member's order")
	assert.Empty(t, keysOf("o2"), "the order of a member merged into it")
	assert.Equal(t, []string{crmKey}, keysOf("o3"), "another member's order keeps its keys")
	assert.Equal(t, int64(100), account(t, s, alice).Balance, "points stay")
}
