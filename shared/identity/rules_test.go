package identity

import (
	"strings"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultRules(t *testing.T) {
	r := DefaultRules()
	tests := []struct {
		idType, strength string
	}{
		{"phone", Strong}, {"phone_sha256", Strong}, {"wechat_unionid", Strong}, {"tmall_omid", Strong},
		{"douyin_unionid", Strong}, {"jd_pin", Strong}, {"app_user_id", Strong}, {"pos_card", Strong}, {"crm_id", Strong},
		{"tmall_ouid", Scoped}, {"douyin_openid", Scoped}, {"wechat_openid", Scoped},
		{"anonymous_id", Weak}, {"phone_masked", Weak}, {"never_heard_of", Weak},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.strength, r.Rule(tt.idType).Strength, tt.idType)
	}
	assert.Equal(t, "tmall_omid", r.Rule("tmall_ouid").LinksVia)
	assert.Equal(t, 1, r.Rule("app_user_id").MaxPerMember)
	assert.Equal(t, 3, r.Rule("wechat_unionid").MaxPerMember)
}

func TestBlocklistCoversFormatsAndHashes(t *testing.T) {
	r := DefaultRules()
	ids, err := NormalizeAll([]events.Identity{{Type: "phone", Value: "+86 138-0000-0000"}})
	require.NoError(t, err)
	for _, id := range ids {
		_, blocked := r.Blocked(id)
		assert.True(t, blocked, "%s of a placeholder phone is blocked", id.Type)
	}
	_, blocked := r.Blocked(events.Identity{Type: "phone", Value: "13812345678"})
	assert.False(t, blocked)
}

func TestParseRulesErrorsNameTheLineAndField(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"syntax", "{\n  \"version\": \"1\",\n  \"fanIn\": 3,,\n}", "line 3"},
		{"wrong type", "{\n  \"version\": \"1\",\n  \"fanIn\": \"three\"\n}", "line 3"},
		{"unknown field", `{"version":"1","fanOut":3}`, `unknown field "fanOut"`},
		{"bad strength", `{"version":"1","fanIn":3,"maxMergesPerIdentity":1,"types":{"phone":{"strength":"strong","priority":1,"maxPerMember":1},"phone_sha256":{"strength":"strong","priority":2,"maxPerMember":1},"x":{"strength":"medium","priority":3,"maxPerMember":1}}}`, "types.x.strength"},
		{"phone not strong", `{"version":"1","fanIn":3,"maxMergesPerIdentity":1,"types":{"phone":{"strength":"weak","priority":1,"maxPerMember":1}}}`, "types.phone"},
		{"scoped without platform id", `{"version":"1","fanIn":3,"maxMergesPerIdentity":1,"types":{"phone":{"strength":"strong","priority":1,"maxPerMember":1},"phone_sha256":{"strength":"strong","priority":2,"maxPerMember":1},"tmall_ouid":{"strength":"scoped","priority":3,"maxPerMember":1}}}`, "types.tmall_ouid.linksVia"},
		{"bad blocklist phone", `{"version":"1","fanIn":3,"maxMergesPerIdentity":1,"types":{"phone":{"strength":"strong","priority":1,"maxPerMember":1},"phone_sha256":{"strength":"strong","priority":2,"maxPerMember":1}},"blocklist":[{"type":"phone","value":"123"}]}`, "blocklist[0]"},
		{"fan-in too small", `{"version":"1","fanIn":1,"maxMergesPerIdentity":1,"types":{"phone":{"strength":"strong","priority":1,"maxPerMember":1},"phone_sha256":{"strength":"strong","priority":2,"maxPerMember":1}}}`, "fanIn"},
		{"duplicate priority", `{"version":"1","fanIn":3,"maxMergesPerIdentity":1,"types":{"phone":{"strength":"strong","priority":1,"maxPerMember":1},"phone_sha256":{"strength":"strong","priority":1,"maxPerMember":1}}}`, "priority 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.file))
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tt.want), "got %q, want it to mention %q", err, tt.want)
		})
	}
}
