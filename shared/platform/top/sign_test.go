package top

import (
	"errors"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// officialExample is the worked example of TOP's "API调用方法详解" (open.taobao.com
// docId=101617&docType=1, 签名示例): taobao.item.seller.get with app secret "helloworld".
var officialExample = map[string]string{
	"method": "taobao.item.seller.get", "app_key": "12345678", "session": "test",
	"timestamp": "2016-01-01 12:00:00", "format": "json", "v": "2.0", "sign_method": "md5",
	"fields": "num_iid,title,nick,price,num", "num_iid": "11223344",
}

func TestSignOfficialExample(t *testing.T) {
	for _, c := range []struct {
		method, want, from string
	}{
		// The document's published sign.
		{SignMD5, "66987CB115214E59E6EC978214934FB8", "open.taobao.com docId=101617"},
		// HMAC-MD5 over the same concatenation, as asserted by third-party TOP SDK tests that cite
		// the same document (and reproduced with `openssl dgst -md5 -hmac helloworld`).
		{SignHMAC, "B4DDA503460D60A86B16E950E5D303E9", "openssl"},
	} {
		got, err := Sign(officialExample, "helloworld", c.method)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "%s (%s): got, want", c.method, c.from)
	}
}

func TestSignSkipsSignAndEmptyValues(t *testing.T) {
	with := map[string]string{"sign": "X", "empty": ""}
	for k, v := range officialExample {
		with[k] = v
	}
	got, err := Sign(with, "helloworld", SignMD5)
	require.NoError(t, err)
	assert.Equal(t, "66987CB115214E59E6EC978214934FB8", got)
	_, err = Sign(officialExample, "helloworld", "sha1")
	assert.Error(t, err)
}

func TestVerify(t *testing.T) {
	now := time.Date(2016, 1, 1, 4, 3, 0, 0, time.UTC) // 12:03 GMT+8
	signed := func(mutate func(map[string]string)) map[string]string {
		p := map[string]string{}
		for k, v := range officialExample {
			p[k] = v
		}
		p["sign"] = "66987cb115214e59e6ec978214934fb8" // case-insensitive
		mutate(p)
		return p
	}
	// resigned isolates the timestamp check: a valid sign over another timestamp.
	resigned := func(ts string) map[string]string {
		p := signed(func(p map[string]string) { p["timestamp"] = ts })
		sign, err := Sign(p, "helloworld", SignMD5)
		require.NoError(t, err)
		p["sign"] = sign
		return p
	}
	for _, c := range []struct {
		name   string
		params map[string]string
		body   []byte
		want   error
	}{
		{"official example", signed(func(map[string]string) {}), nil, nil},
		{"tampered value", signed(func(p map[string]string) { p["num_iid"] = "11223345" }), nil, platform.ErrSignature},
		{"body not signed", signed(func(map[string]string) {}), []byte("{}"), platform.ErrSignature},
		{"stale but correctly signed", resigned("2016-01-01 11:50:00"), nil, platform.ErrSignature},
		{"from the future", resigned("2016-01-01 12:20:00"), nil, platform.ErrSignature},
		{"within the skew", resigned("2016-01-01 11:55:00"), nil, nil},
	} {
		err := Verify(c.params, c.body, "helloworld", now)
		if c.want == nil {
			assert.NoError(t, err, c.name)
			continue
		}
		assert.True(t, errors.Is(err, c.want), "%s: got %v, want %v", c.name, err, c.want)
	}
}

func TestTimestamp(t *testing.T) {
	got := Timestamp(time.Date(2016, 1, 1, 4, 0, 0, 0, time.UTC))
	assert.Equal(t, "2016-01-01 12:00:00", got)
	back, err := ParseTime(got)
	require.NoError(t, err)
	assert.True(t, back.Equal(time.Date(2016, 1, 1, 4, 0, 0, 0, time.UTC)))
}
