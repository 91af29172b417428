package ingest

import (
	"net/http"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/pos"
)

// Adapters are the platforms served at /webhooks/{platform}, listed explicitly (no registry): the
// ingest command, the all-in-one stack and the re-normalisation command share this list. client
// makes the outgoing calls some adapters need (an order detail, a batch decrypt).
func Adapters(client *http.Client) map[string]platform.Adapter {
	_ = client
	list := []platform.Adapter{
		pos.Adapter{},
	}
	out := make(map[string]platform.Adapter, len(list))
	for _, a := range list {
		out[a.Name()] = a
	}
	return out
}
