package stack

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callTmallMember posts an SPI call signed as 会员通 would under TOP's md5 scheme (written here
// from the document: md5(secret + sorted name+value + body + secret), upper hex).
func callTmallMember(t *testing.T, base, method, body string) profile.SPIAnswer {
	t.Helper()
	q := url.Values{"app_key": {tmcAppKey}, "method": {method}, "sign_method": {"md5"},
		"timestamp": {time.Now().In(time.FixedZone("GMT+8", 8*3600)).Format("2006-01-02 15:04:05")}}
	names := []string{}
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	s := tmcSecret
	for _, k := range names {
		s += k + q.Get(k)
	}
	sum := md5.Sum([]byte(s + body + tmcSecret))
	q.Set("sign", strings.ToUpper(hex.EncodeToString(sum[:])))
	resp, err := http.Post(base+profile.TmallMemberPath+"?"+q.Encode(), "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var a profile.SPIAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return a
}

// TestTmallMemberJoinThenOrderThenQuery: a buyer joins through 会员通 (three times: the join and two
// backfills), pays a Tmall order polled from TMC, and the bind-query shows the points and level.
func TestTmallMemberJoinThenOrderThenQuery(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	s := start(t, opts)
	api := &profile.API{Store: s.Store, Keyer: opts.IdentityKeys, Ladder: loyalty.Defaults().Ladder(), Now: time.Now,
		Tmall: &profile.TmallMember{AppKey: tmcAppKey, Secret: tmcSecret, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}}
	spi := httptest.NewServer(api.TmallMemberHandler(s.Runtime.Publisher(profile.Name)))
	t.Cleanup(spi.Close)
	const query = `{"seller_name":"omni旗舰店","nick":"zhangsan","mobile":"13812345678"}`
	assert.Equal(t, "E01", callTmallMember(t, spi.URL, profile.SPIMethodQuery, query).QueryCode, "not a member yet")

	join := `{"seller_name":"omni旗舰店","nick":"zhangsan","open_id":"AAHk5d-buyer","union_id":"omid-zs","mobile":"13812345678"}`
	for range 3 {
		assert.Equal(t, "SUC", callTmallMember(t, spi.URL, profile.SPIMethodJoin, join).QueryCode)
	}
	waitQuiet(t, s)
	members, err := s.Store.Query(context.Background(), store.Query{Collection: member.Members})
	require.NoError(t, err)
	assert.Len(t, members, 1, "got members, want one after a join and its backfills")
	assert.Equal(t, 1, stored(t, s, events.MemberRegistered))

	gw := newTMCGateway(t)
	gw.Add(tmcMessages[0])
	_, err = tmcPoller(gw.URL).Once(context.Background(), newRecordingBroker(s))
	require.NoError(t, err)
	waitQuiet(t, s)

	got := callTmallMember(t, spi.URL, profile.SPIMethodQuery, query)
	want := profile.SPIAnswer{QueryCode: "SUC", Member: profile.SPIMember{Point: 1299, Level: 2, Nick: "zhangsan", Mobile: "13812345678"}}
	assert.Equal(t, want, got, "silver (rank 1) after 1 299 yuan: level 2")
	p := lookupIdentity(t, s, events.Identity{Type: "tmall_omid", Value: "omid-zs"})
	assert.Equal(t, int64(1), p.Orders.Count)
}
