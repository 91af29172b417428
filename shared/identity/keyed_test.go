package identity

import (
	"strings"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSecret is the bytes 0..31: the expected values below were computed apart from this package,
// with Python's hmac module.
const testSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func testKeyer(t *testing.T) *Keyer {
	t.Helper()
	k, err := ParseKeys("t1:" + testSecret)
	require.NoError(t, err)
	return k
}

func TestParseKeysRefusesMalformedSpecs(t *testing.T) {
	tests := []struct{ spec, wantErr string }{
		{"", "want id:base64key"},
		{"t1", "want id:base64key"},
		{"bad id!:" + testSecret, "want id:base64key"},
		{"t1:not-base64", "32 bytes"},
		{"t1:AAEC", "32 bytes"},
		{"t1:" + testSecret + ",t1:" + testSecret, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := ParseKeys(tt.spec)
			require.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), testSecret, "an error never shows the secret")
		})
	}
	k, err := ParseKeys(NewKey("new") + ", old:" + testSecret)
	require.NoError(t, err)
	assert.Equal(t, "new", k.CurrentKeyID())
	assert.Equal(t, `[current=new keys=2]`, k.LogValue().String())
}

func TestKeyedFormsAreHMACsOfTheNormalisedValue(t *testing.T) {
	k := testKeyer(t)
	const (
		phoneKey     = "t1:278292768361f94466660c9fd1042f33018062ee"
		md5Key       = "t1:5c2a4761a51bbd50ee57e6fc8f0c778a3b874852"
		phoneTomb    = "t1:1afa8f80d4edee09e87815ed167d49095666849b"
		tmallOUIDKey = "t1:6a6ca08e78b92205aaa20879b715f538f6bda155"
	)
	tests := []struct {
		name string
		in   events.Identity
		want Form
	}{
		{"a phone keys as its sha256 and stays plaintext for match to seal", events.Identity{Type: Phone, Value: "13812345678"},
			Form{Identity: events.Identity{Type: Phone, Value: "13812345678"}, Key: phoneKey, Tombstone: phoneTomb}},
		{"a platform sha256 becomes its key", events.Identity{Type: PhoneSHA256Type, Value: PhoneSHA256("13812345678")},
			Form{Identity: events.Identity{Type: PhoneSHA256Type, Value: phoneKey}, Key: phoneKey, Tombstone: phoneTomb}},
		{"a platform md5 becomes its own key", events.Identity{Type: PhoneMD5Type, Value: PhoneMD5("13812345678")},
			Form{Identity: events.Identity{Type: PhoneMD5Type, Value: md5Key}, Key: md5Key}},
		{"a channel id keeps its value", events.Identity{Type: TmallOUID, Value: "AAF3", Scope: "shop-1"},
			Form{Identity: events.Identity{Type: TmallOUID, Value: "AAF3", Scope: "shop-1"}, Key: tmallOUIDKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := k.Current(tt.in)
			if tt.want.Tombstone == "" {
				tt.want.Tombstone = got.Tombstone
			}
			assert.Equal(t, tt.want, got, "got form, want")
			assert.True(t, IsKeyed(got.Key), "got key %q, want keyid:40 hex", got.Key)
			assert.NotEqual(t, got.Key, got.Tombstone, "a tombstone is keyed apart from the key")
			tomb, err := k.Tombstone(got.Key)
			require.NoError(t, err)
			assert.Equal(t, got.Tombstone, tomb, "got tombstone from the key, want the form's")
		})
	}
}

func TestRotationKeysUnderEveryKeyCurrentFirst(t *testing.T) {
	old := testKeyer(t)
	rotated, err := ParseKeys(NewKey("t2") + ",t1:" + testSecret)
	require.NoError(t, err)
	id := events.Identity{Type: PhoneSHA256Type, Value: PhoneSHA256("13812345678")}
	keys := rotated.Keys(id)
	require.Len(t, keys, 2)
	assert.Equal(t, "t2", KeyID(keys[0]), "got the current key first")
	assert.Equal(t, old.Key(id), keys[1], "got the older key's form second, the same as before the rotation")
	assert.NotEqual(t, keys[0], keys[1])
	forms := rotated.Forms(id)
	assert.Equal(t, keys[0], forms[0].Identity.Value, "got the keyed value under the current key")

	_, err = old.Tombstone(keys[0])
	require.ErrorIs(t, err, ErrUnknownKey, "a key made by a key the keyer does not hold")
}

func TestKeyedValuesRevealNoPhone(t *testing.T) {
	k := testKeyer(t)
	for _, p := range []string{"13812345678", "19900000001"} {
		for _, f := range k.Forms(events.Identity{Type: PhoneMD5Type, Value: PhoneMD5(p)}) {
			for _, leak := range []string{p, PhoneSHA256(p), PhoneMD5(p), p[7:]} {
				assert.NotContains(t, f.Key+f.Identity.Value+f.Tombstone, leak)
			}
		}
	}
	assert.Equal(t, "t1", KeyID("t1:"+strings.Repeat("a", 40)))
	assert.Empty(t, KeyID(PhoneSHA256("13812345678")), "a raw hash is not keyed")
	assert.False(t, IsKeyed(PhoneMD5("13812345678")))
}
