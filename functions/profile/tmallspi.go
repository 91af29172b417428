package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
)

// SPIRequest is the body of a 会员通 SPI call (会员通 接入文档, 查询会员 SPI 请求参数): the seller,
// the buyer's nick, open_id (per app key), union_id (per brand) and the plaintext mobile.
type SPIRequest struct {
	SellerName string `json:"seller_name"`
	Nick       string `json:"nick"`
	OpenID     string `json:"open_id"`
	UnionID    string `json:"union_id"`
	Mobile     string `json:"mobile"`
}

// maxSPIField bounds each field (ids and nicks are short; the contract caps values at 256).
const maxSPIField = 256

// ParseSPIRequest reads a 会员通 SPI body; it needs at least one of mobile, open_id and union_id,
// and a mobile must be a valid mainland number.
func ParseSPIRequest(body []byte) (SPIRequest, error) {
	var r SPIRequest
	if err := json.Unmarshal(body, &r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return r, platform.Malformed(te.Field, "want a string")
		}
		return r, platform.Malformed("body", "want a JSON object: %v", err)
	}
	for field, v := range map[string]*string{"seller_name": &r.SellerName, "nick": &r.Nick, "open_id": &r.OpenID, "union_id": &r.UnionID, "mobile": &r.Mobile} {
		*v = strings.TrimSpace(*v)
		if len(*v) > maxSPIField {
			return r, platform.Malformed(field, "longer than %d bytes", maxSPIField)
		}
	}
	if r.Mobile == "" && r.OpenID == "" && r.UnionID == "" {
		return r, platform.Malformed("mobile", "one of mobile, open_id and union_id is required")
	}
	if r.Mobile != "" {
		p, err := identity.NormalizePhone(r.Mobile)
		if err != nil {
			return r, platform.Malformed("mobile", "not a mainland mobile number")
		}
		r.Mobile = p
	}
	return r, nil
}

// Identities are the buyer's identities, strongest first: union_id is the brand-wide OMID,
// open_id the app-scoped open uid, mobile the plaintext phone (match seals it).
func (r SPIRequest) Identities(appKey string) []events.Identity {
	var ids []events.Identity
	if r.UnionID != "" {
		ids = append(ids, events.Identity{Type: identity.TmallOMID, Value: r.UnionID})
	}
	if r.OpenID != "" {
		ids = append(ids, events.Identity{Type: identity.TaobaoOpenUID, Value: r.OpenID, Scope: appKey})
	}
	if r.Mobile != "" {
		ids = append(ids, events.Identity{Type: identity.Phone, Value: r.Mobile})
	}
	return ids
}

// JoinID is the deterministic id of the member.registered a join publishes: named by the keyed
// document key of the buyer's strongest identity (never the plaintext, nor a hash a guess could be
// checked against), so the platform's backfills of the same join publish the same id and the
// stream and match store it once.
func (r SPIRequest) JoinID(appKey string, keyer *identity.Keyer) (string, error) {
	norm, err := identity.Normalize(r.Identities(appKey)[0])
	if err != nil {
		return "", fmt.Errorf("join id: %w", err)
	}
	return platform.EventID("tmall", "member-join/"+appKey+"/"+keyer.Key(norm[0]), 0), nil
}
