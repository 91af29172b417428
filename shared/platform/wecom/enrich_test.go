package wecom_test

import (
	"context"
	"strings"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wecom"
	"github.com/omnimember/omnimember/shared/platform/wecom/wecomapi"
	"github.com/omnimember/omnimember/shared/platform/wecom/wecomapi/wecomapitest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnionIDFromTheContactAPI(t *testing.T) {
	srv := wecomapitest.New(sampleCorpID, "contact-secret", map[string]wecomapitest.Contact{
		"woAJ2GCAAAXtWyujaWJHDDGi0mAAAA": {Type: 1, UnionID: "oUnion001"},
		"wmWeComUser":                    {Type: 2},
	})
	defer srv.Close()
	client := wecomapi.New(srv.Client())
	client.BaseURL = srv.URL
	adapter := wecom.Adapter{Contacts: client}
	withSecret := platform.Credentials{sampleCorpID: {"token": sampleToken, "aesKey": sampleAESKey, "secret": "contact-secret"}}

	external := events.Identity{Type: "wecom_external_userid", Value: "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", Scope: sampleCorpID}
	union := events.Identity{Type: "wechat_unionid", Value: "oUnion001"}
	tests := []struct {
		name     string
		msg      string
		creds    platform.Credentials
		fail     int
		refuse   int
		want     []events.Identity
		wantAttr string
		wantErr  error
	}{
		{"WeChat user added", addContact, withSecret, 0, 0, []events.Identity{external, union}, "", nil},
		{"WeChat user edited", strings.Replace(addContact, "[add_external_contact]", "[edit_external_contact]", 1), withSecret, 0, 0, []events.Identity{external, union}, "", nil},
		{"WeCom user: no unionid", strings.ReplaceAll(addContact, external.Value, "wmWeComUser"), withSecret, 0, 0,
			[]events.Identity{{Type: "wecom_external_userid", Value: "wmWeComUser", Scope: sampleCorpID}}, "", nil},
		{"contact already gone", strings.ReplaceAll(addContact, external.Value, "wmGone"), withSecret, 0, 0,
			[]events.Identity{{Type: "wecom_external_userid", Value: "wmGone", Scope: sampleCorpID}}, "", nil},
		{"deletions are not looked up", strings.Replace(addContact, "[add_external_contact]", "[del_follow_user]", 1), withSecret, 5, 0, []events.Identity{external}, "", nil},
		{"corp without a secret", addContact, creds, 5, 0, []events.Identity{external}, "", nil},
		{"IP not on the corp's list: kept, without unionid", addContact, withSecret, 0, 60020, []events.Identity{external}, "wecom externalcontact/get refused: errcode 60020", nil},
		{"API down: WeCom must retry", addContact, withSecret, 5, 0, nil, "", platform.ErrUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.FailNext(tt.fail)
			srv.Refuse(tt.refuse)
			defer srv.FailNext(0)
			defer srv.Refuse(0)
			res, err := adapter.Handle(context.Background(), signedPush(sender, tt.msg, addContactTime, "n", "0123456789abcdef", addContactTime), tt.creds)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, res.Events)
				return
			}
			require.NoError(t, err)
			require.Len(t, res.Events, 1)
			require.NoError(t, events.Validate(res.Events[0]))
			d, err := events.Decode[events.InteractionRecordedData](res.Events[0])
			require.NoError(t, err)
			assert.Equal(t, tt.want, d.Identities)
			assert.Equal(t, tt.wantAttr, d.Attributes["unionidLookup"])
		})
	}
}
