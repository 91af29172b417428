package identity

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/omnimember/omnimember/events"
)

// Identity types of the contract (MISSION §4).
const (
	Phone           = "phone"
	PhoneSHA256Type = "phone_sha256"
	PhoneMD5Type    = "phone_md5"
	PhoneMasked     = "phone_masked"
	// PhoneCiphertext is a platform's encrypted phone (Douyin encrypt_post_tel, Youzan $..$1$,
	// JD): only that platform's key opens it, so it is scoped to platform:shop and weak.
	PhoneCiphertext     = "phone_ciphertext"
	TmallOUID           = "tmall_ouid"
	TmallOMID           = "tmall_omid"
	TaobaoOpenUID       = "taobao_open_uid"
	DouyinOpenID        = "douyin_openid"
	DouyinUnionID       = "douyin_unionid"
	JDPin               = "jd_pin"
	JDXID               = "jd_xid"
	JDOpenID            = "jd_open_id"
	WeChatOpenID        = "wechat_openid"
	WeChatUnionID       = "wechat_unionid"
	WeComExternalUserID = "wecom_external_userid"
	YouzanOpenID        = "youzan_open_id"
	AppUserID           = "app_user_id"
	AnonymousID         = "anonymous_id"
	POSCard             = "pos_card"
	CRMID               = "crm_id"
)

// scoped identity types are only unique within a shop or app, so they need a scope.
var scoped = map[string]bool{TmallOUID: true, TaobaoOpenUID: true, DouyinOpenID: true, WeChatOpenID: true, JDXID: true, JDOpenID: true, WeComExternalUserID: true, PhoneCiphertext: true}

var (
	hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hexMD5    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	masked    = regexp.MustCompile(`^1[3-9][0-9]\*{4}[0-9]{4}$`)
)

// IsScoped reports whether an identity type is only unique within its shop or app.
func IsScoped(idType string) bool { return scoped[idType] }

// Normalize cleans one identity and expands a plaintext phone into the phone itself plus its
// SHA-256 and MD5 hashes, so that a hash from any platform can meet it.
func Normalize(id events.Identity) ([]events.Identity, error) {
	id.Type = strings.TrimSpace(strings.ToLower(id.Type))
	id.Value = strings.TrimSpace(id.Value)
	id.Scope = strings.TrimSpace(id.Scope)
	if id.Value == "" {
		return nil, fmt.Errorf("identity %s: empty value", id.Type)
	}
	if scoped[id.Type] && id.Scope == "" {
		return nil, fmt.Errorf("identity %s: a store-scoped id needs its shop/app as scope", id.Type)
	}
	if !scoped[id.Type] {
		id.Scope = ""
	}
	switch id.Type {
	case Phone:
		p, err := NormalizePhone(id.Value)
		if err != nil {
			return nil, fmt.Errorf("identity phone: %w", err)
		}
		return []events.Identity{
			{Type: Phone, Value: p},
			{Type: PhoneSHA256Type, Value: PhoneSHA256(p)},
			{Type: PhoneMD5Type, Value: PhoneMD5(p)},
		}, nil
	case PhoneSHA256Type:
		return checked(id, hexSHA256, "64 hex digits")
	case PhoneMD5Type:
		return checked(id, hexMD5, "32 hex digits")
	case PhoneMasked:
		return checked(id, masked, "a mask like 138****5678")
	}
	return []events.Identity{id}, nil
}

func checked(id events.Identity, pattern *regexp.Regexp, want string) ([]events.Identity, error) {
	id.Value = strings.ToLower(id.Value)
	if !pattern.MatchString(id.Value) {
		return nil, fmt.Errorf("identity %s: want %s", id.Type, want)
	}
	return []events.Identity{id}, nil
}

// NormalizeAll normalises a list and removes duplicates, keeping first-seen order.
func NormalizeAll(ids []events.Identity) ([]events.Identity, error) {
	out := make([]events.Identity, 0, len(ids)+2)
	seen := make(map[string]bool, len(ids)+2)
	for _, id := range ids {
		norm, err := Normalize(id)
		if err != nil {
			return nil, err
		}
		for _, n := range norm {
			if k := n.Type + "\x00" + n.Scope + "\x00" + n.Value; !seen[k] {
				seen[k] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// canonical names a normalised identity in memory (the blocklist): a plaintext phone as its
// SHA-256, so blocking a phone blocks its hash. Never stored: stored keys are keyed (Keyer).
func canonical(id events.Identity) string {
	if id.Type == Phone {
		id = events.Identity{Type: PhoneSHA256Type, Value: PhoneSHA256(id.Value)}
	}
	return id.Type + "\x00" + id.Scope + "\x00" + id.Value
}

// WithoutPlaintext replaces plaintext phones by their mask, for anything that leaves the match
// function: events on the bus, logs and profiles. Phone hashes must be keyed first (Keyer).
func WithoutPlaintext(ids []events.Identity) []events.Identity {
	out := make([]events.Identity, 0, len(ids))
	for _, id := range ids {
		if id.Type == Phone {
			id = events.Identity{Type: PhoneMasked, Value: MaskPhone(id.Value)}
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
