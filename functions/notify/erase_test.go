package notify

import (
	"context"
	"net/http"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOptOutReplyFindsAMemberKeyedBeforeARotation: the reply's phone is keyed with every identity
// key, the current one first, so a member match keyed under the older key is still found.
func TestOptOutReplyFindsAMemberKeyedBeforeARotation(t *testing.T) {
	e := newInboundEnv(t, "tencent") // its member is keyed with testKeyer
	rotated, err := identity.ParseKeys(identity.NewKey("n2") + "," + testKeyerSpec)
	require.NoError(t, err)
	e.h.Keyer = rotated
	status, _ := e.post(t, "/webhooks/sms/tencent/replies?token=callback-token-123",
		`{"extend":"","mobile":"13812345678","nationcode":"86","sign":"山野咖啡","text":"td","time":1795000000}`)
	require.Equal(t, http.StatusOK, status)
	var st contact.State
	require.NoError(t, e.s.Get(context.Background(), contact.Collection, alice, &st))
	assert.True(t, st.Channels["sms"].OptedOut, "got not opted out, want the member found under the older key")
}

// TestErasureForgetsTheIdentitiesNotificationsCarried: a sync names the platform id it syncs; once
// the member is erased, neither its record nor the outbox holds the id (or the text rendered with
// it), while the notifications stay as counted outcomes.
func TestErasureForgetsTheIdentitiesNotificationsCarried(t *testing.T) {
	h, s := newHandler(t, map[string]any{"outbox": Outbox{}}, "outbox")
	h.SyncChannels = map[string]string{identity.TmallOUID: "outbox"}
	ctx := context.Background()
	ouid := member.StoredIdentity{Type: identity.TmallOUID, Scope: "shop-1", Value: "ouid-to-erase", Channel: "tmall", FirstSeen: now}
	ouid.Key = testKeyer.Key(events.Identity{Type: ouid.Type, Value: ouid.Value, Scope: ouid.Scope})
	require.NoError(t, s.Set(ctx, member.Members, alice, member.Member{OneID: alice, Identities: []member.StoredIdentity{ouid}}))
	h.Templates["member_sync"] = map[string]string{"zh-CN": "{{identity}} {{level}}", "en": "{{identity}} {{level}}"}

	sent, err := h.Handle(ctx, tierChanged(t, "tier-1"))
	require.NoError(t, err)
	require.Len(t, sent, 2, "the member's message and the sync")
	require.NotEmpty(t, storetest.Holding(t, s, "ouid-to-erase"), "before: the sync holds the id")

	require.NoError(t, s.Set(ctx, member.Members, alice, member.Member{OneID: alice}), "match erased the member itself")
	erased, err := events.New(events.MemberErased, "erase-"+alice, events.Source("match"), now, events.MemberErasedData{
		OneID: alice, Identities: 1, By: "privacy@brand.example", RequestID: "erase-" + alice, ErasedAt: now})
	require.NoError(t, err)
	for range 2 {
		outs, err := h.Handle(ctx, erased)
		require.NoError(t, err)
		assert.Empty(t, outs)
	}
	assert.Empty(t, storetest.Holding(t, s, "ouid-to-erase"), "after: nowhere")
	for _, ev := range sent {
		d, err := events.Decode[events.NotificationOutcomeData](ev)
		require.NoError(t, err)
		var rec record
		require.NoError(t, s.Get(ctx, member.Notifications, d.NotificationID, &rec))
		assert.Equal(t, "sent", rec.Status, "%s: the outcome stays", rec.Category)
	}
}
