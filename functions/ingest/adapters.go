package ingest

import (
	"github.com/omnimember/omnimember/functions/ingest/outbound"
	"net/http"

	"github.com/omnimember/omnimember/functions/ingest/douyinapi"
	"github.com/omnimember/omnimember/functions/ingest/weixinapi"
	"github.com/omnimember/omnimember/functions/ingest/youzanapi"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/app"
	"github.com/omnimember/omnimember/shared/platform/douyin"
	"github.com/omnimember/omnimember/shared/platform/pos"
	"github.com/omnimember/omnimember/shared/platform/wechat"
	"github.com/omnimember/omnimember/shared/platform/wecom"
	"github.com/omnimember/omnimember/shared/platform/youzan"
)

// Adapters are the platforms served at /webhooks/{platform}, listed explicitly (no registry): the
// ingest command, the all-in-one stack and the re-normalisation command share this list. client
// makes the outgoing calls some adapters need (an order detail, a batch decrypt).
func Adapters(client *http.Client) map[string]platform.Adapter {
	weixin := weixinapi.New(client)
	list := []platform.Adapter{
		pos.Adapter{},
		app.Adapter{},
		wecom.Adapter{Contacts: weixin},
		wechat.Adapter{Users: weixin},
		douyin.New(douyinapi.New(douyinapi.DefaultBaseURL, outbound.Options{HTTP: client})),
		youzan.New(youzanapi.New(youzanapi.DefaultBaseURL, outbound.Options{HTTP: client})),
	}
	out := make(map[string]platform.Adapter, len(list))
	for _, a := range list {
		out[a.Name()] = a
	}
	return out
}
