package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/shared/admit"
)

// TestWorkloadsPassTheEdge: what the bench posts to /v1/events (and hands match directly) is what
// ingest admits, its source convention (<channel>/<shopId>) included, so the figures measure
// accepted events.
func TestWorkloadsPassTheEdge(t *testing.T) {
	edge := admit.Policy{Window: admit.Live(admit.DefaultMaxAge, admit.DefaultMaxSkew)}
	for _, ev := range append(workload(200, 20, "t"), knownOrders(20, 20, "k")...) {
		_, err := edge.Check(ev)
		require.NoError(t, err, ev.ID())
	}
}
