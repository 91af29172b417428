package admit

import (
	"net/url"
	"strings"

	"github.com/omnimember/omnimember/shared/credential"
)

// The source convention binds what an event says to who may say it. A sender token is scoped to
// CloudEvents sources (shared/credential: `jd/jd-shop-9`, `tmall/*`), and a channel event's data
// names a channel and a shop; without a rule tying the two, a token for one JD shop could post
// Tmall orders of another shop under its own source. The rule, for every channel event a sender
// posts:
//
//   - the source is `<channel>/<shopId>`, more path segments allowed after it
//     (`pos/store-12/till-3`, `app/ios`);
//   - its first segment is data.channel;
//   - where the data has a non-empty shopId (order.paid, order.refunded, member.registered), its
//     second segment, path-unescaped, is that shop id (Source escapes a shop id that holds a `/`);
//     an interaction, which names no shop, needs only the channel;
//   - history has the same rule after the `backfill/` prefix (credential.HistoryPrefix; the backfill
//     builds its sources with HistorySource).
//
// So a sender's source scope bounds the channels and shops its data may name. The platform
// adapters (shared/platform) do not follow it: their events carry the adapter's own source,
// `omnimember/webhooks/<platform>`, and the shop comes from the push the platform signed for that
// shop or from the platform's own API; Policy.PlatformSource skips the check for them.

// Source is the source of a channel shop's events under the convention: `<channel>/<shopId>`, the
// shop id path-escaped so that a `/` or a space in it stays inside its segment; just the channel
// without a shop. A sender may add segments after it.
func Source(channel, shop string) string {
	if shop == "" {
		return channel
	}
	return channel + "/" + url.PathEscape(shop)
}

// HistorySource is the source of a channel shop's history (the backfill): Source under
// credential.HistoryPrefix.
func HistorySource(channel, shop string) string {
	return credential.HistoryPrefix + Source(channel, shop)
}

// SourceAgrees checks that a source names the channel and shop of channel data (a pointer, as
// events.DecodeData returns it): the refusal is an *Error of CheckSource naming data.channel or
// data.shopId.
func SourceAgrees(source string, data any) error {
	c, ok := facts(data)
	if !ok {
		return refuse(CheckAttributes, "type", "%T is not the data of a channel event", data)
	}
	return c.agrees(source)
}

func (c content) agrees(source string) error {
	rest, history := strings.CutPrefix(source, credential.HistoryPrefix)
	segs := strings.SplitN(rest, "/", 3)
	if segs[0] != c.channel {
		return refuse(CheckSource, "data.channel", "%q disagrees with the event's source %q: a channel event's source is "+
			"<channel>/<shopId>[/…], its first segment the data's channel", c.channel, source)
	}
	if c.shop == "" {
		return nil
	}
	if len(segs) > 1 {
		if shop, err := url.PathUnescape(segs[1]); err == nil && shop == c.shop {
			return nil
		}
	}
	want := Source(c.channel, c.shop)
	if history {
		want = HistorySource(c.channel, c.shop)
	}
	return refuse(CheckSource, "data.shopId", "%q disagrees with the event's source %q: a channel event's source is "+
		"<channel>/<shopId>[/…], its second segment the data's shop (%q for this shop)", c.shop, source, want)
}
