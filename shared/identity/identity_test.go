package identity

import (
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{"13812345678", "13812345678", false},
		{"+86 138-1234-5678", "13812345678", false},
		{"0086 13812345678", "13812345678", false},
		{"8613812345678", "13812345678", false},
		{"１３８１２３４５６７８", "13812345678", false},
		{"＋８６ １３８ １２３４ ５６７８", "13812345678", false},
		{"(+86) 199.1234.5678", "19912345678", false},
		{"12812345678", "", true},     // second digit 2 is not a mobile prefix
		{"1381234567", "", true},      // 10 digits
		{"138123456789", "", true},    // 12 digits
		{"138****5678", "", true},     // a mask is not a phone
		{"138 1234 567a", "", true},   // letters
		{"13+812345678", "", true},    // plus inside
		{"+1 415 555 0100", "", true}, // not mainland
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := NormalizePhone(tt.raw)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalidPhone)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "got normalised, want")
		})
	}
}

func TestPhoneHashesAndMask(t *testing.T) {
	// Independent values computed with sha256sum/md5sum over the 11 ASCII digits.
	assert.Equal(t, "38aed9048140b0e437ea81461d9ea4524169f6795004da120bcf7d41894e4d15", PhoneSHA256("13812345678"))
	assert.Equal(t, "4c0115d39ddea1eba5a7cdf8edfc18a9", PhoneMD5("13812345678"))
	assert.Equal(t, "138****5678", MaskPhone("13812345678"))
}

func TestNormalizeExpandsPhoneAndChecksTypes(t *testing.T) {
	tests := []struct {
		name    string
		in      events.Identity
		want    []events.Identity
		wantErr string
	}{
		{"phone expands to hashes", events.Identity{Type: "phone", Value: "+86 138 1234 5678"}, []events.Identity{
			{Type: Phone, Value: "13812345678"},
			{Type: PhoneSHA256Type, Value: "38aed9048140b0e437ea81461d9ea4524169f6795004da120bcf7d41894e4d15"},
			{Type: PhoneMD5Type, Value: "4c0115d39ddea1eba5a7cdf8edfc18a9"},
		}, ""},
		{"sha256 lowercased", events.Identity{Type: "phone_sha256", Value: "38AED9048140B0E437EA81461D9EA4524169F6795004DA120BCF7D41894E4D15"},
			[]events.Identity{{Type: PhoneSHA256Type, Value: "38aed9048140b0e437ea81461d9ea4524169f6795004da120bcf7d41894e4d15"}}, ""},
		{"bad sha256", events.Identity{Type: "phone_sha256", Value: "xyz"}, nil, "64 hex"},
		{"mask kept", events.Identity{Type: "phone_masked", Value: "138****5678"}, []events.Identity{{Type: PhoneMasked, Value: "138****5678"}}, ""},
		{"scoped needs scope", events.Identity{Type: "tmall_ouid", Value: "AAF3"}, nil, "scope"},
		{"scope kept for scoped", events.Identity{Type: "tmall_ouid", Value: "AAF3", Scope: " shop-1 "},
			[]events.Identity{{Type: TmallOUID, Value: "AAF3", Scope: "shop-1"}}, ""},
		{"scope dropped for global", events.Identity{Type: "tmall_omid", Value: "M1", Scope: "shop-1"},
			[]events.Identity{{Type: TmallOMID, Value: "M1"}}, ""},
		{"empty value", events.Identity{Type: "crm_id", Value: "  "}, nil, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizeAllDedupesAndKeyJoinsPhoneWithItsHash(t *testing.T) {
	got, err := NormalizeAll([]events.Identity{
		{Type: "phone", Value: "13812345678"},
		{Type: "phone_sha256", Value: "38aed9048140b0e437ea81461d9ea4524169f6795004da120bcf7d41894e4d15"},
		{Type: "phone", Value: "+8613812345678"},
	})
	require.NoError(t, err)
	require.Len(t, got, 3, "phone, sha256 and md5 once each: %v", got)
	k := testKeyer(t)
	assert.Equal(t, k.Key(got[0]), k.Key(got[1]), "a phone and its sha256 share one key")
	assert.NotEqual(t, k.Key(got[1]), k.Key(got[2]))
	assert.NotContains(t, k.Key(got[0]), "13812345678")
	assert.NotEqual(t, k.Key(events.Identity{Type: TmallOUID, Value: "A", Scope: "s1"}),
		k.Key(events.Identity{Type: TmallOUID, Value: "A", Scope: "s2"}), "scope separates store-scoped ids")
}

func TestWithoutPlaintext(t *testing.T) {
	ids, err := NormalizeAll([]events.Identity{{Type: "phone", Value: "13812345678"}, {Type: "phone_masked", Value: "138****5678"}})
	require.NoError(t, err)
	got := WithoutPlaintext(ids)
	for _, id := range got {
		assert.NotEqual(t, Phone, id.Type)
		assert.NotContains(t, id.Value, "13812345678")
	}
	assert.Len(t, got, 3, "sha256, md5 and one mask: %v", got)
}

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"13812345678", "+86 138-1234-5678", "１３８１２３４５６７８", "0086", "+", "８６"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := NormalizePhone(raw)
		if err != nil {
			return
		}
		require.True(t, isMobile(p), "normalised %q to %q", raw, p)
		again, err := NormalizePhone(p)
		require.NoError(t, err)
		require.Equal(t, p, again, "normalisation must be idempotent")
	})
}
