package profile

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInteractionsAreCountedOncePerEvent(t *testing.T) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{})
	require.NoError(t, err)
	defer s.Close()
	api := &API{Store: s, Ladder: loyalty.Defaults().Ladder(), Now: func() time.Time { return t0 }}
	interaction := func(id, kind string, at time.Time) events.IdentityResolvedData {
		ids := []events.Identity{{Type: "app_user_id", Value: "u1"}}
		return events.IdentityResolvedData{OneID: alice, SourceType: events.InteractionRecorded, SourceID: id, Identities: ids,
			Interaction: &events.InteractionRecordedData{Channel: "app", Kind: kind, OccurredAt: at, Identities: ids}}
	}
	for _, d := range []events.IdentityResolvedData{interaction("i1", "browse", t0), interaction("i2", "live_view", t0.Add(time.Hour)), interaction("i1", "browse", t0)} {
		ev, err := events.New(events.IdentityResolved, "r-"+d.SourceID, events.Source("match"), t0, d)
		require.NoError(t, err)
		outs, err := api.Handle(context.Background(), ev)
		require.NoError(t, err)
		assert.Empty(t, outs)
	}
	var act member.Activity
	require.NoError(t, s.Get(context.Background(), member.Activities, alice, &act))
	assert.Equal(t, int64(2), act.ByChannel["app"].Count, "the redelivered browse counts once")
	assert.Equal(t, map[string]int64{"browse": 1, "live_view": 1}, act.ByChannel["app"].Kinds)
	assert.Equal(t, t0.Add(time.Hour), act.ByChannel["app"].LastAt)
	require.NotNil(t, act.LastAt, "segments select by the last interaction")
	assert.Equal(t, member.IndexTime(t0.Add(time.Hour)), *act.LastAt)
	var daily int64
	for _, n := range act.Daily {
		daily += n
	}
	assert.Equal(t, int64(2), daily, "got interactions by day, want each event once")
}
