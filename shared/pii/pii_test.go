package pii

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealOpenAndRotate(t *testing.T) {
	oldKey, newKey := NewKey("k1"), NewKey("k2")
	before, err := ParseKeyring(oldKey)
	require.NoError(t, err)
	sealed, err := before.Seal("13812345678", "phone")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(sealed, "k1:"))
	assert.NotContains(t, sealed, "13812345678")

	again, err := before.Seal("13812345678", "phone")
	require.NoError(t, err)
	assert.NotEqual(t, sealed, again, "a fresh nonce each time")

	rotated, err := ParseKeyring(newKey + "," + oldKey)
	require.NoError(t, err)
	got, err := rotated.Open(sealed, "phone")
	require.NoError(t, err, "values sealed before the rotation still open")
	assert.Equal(t, "13812345678", got)
	resealed, err := rotated.Seal(got, "phone")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(resealed, "k2:"), "new values use the new key")

	_, err = rotated.Open(sealed, "email")
	assert.Error(t, err, "the purpose is authenticated")
	_, err = before.Open(resealed, "phone")
	assert.ErrorContains(t, err, "unknown key")
	tampered := sealed[:len(sealed)-2] + "AA"
	_, err = rotated.Open(tampered, "phone")
	assert.Error(t, err)
}

func TestParseKeyringRejectsBadSpecs(t *testing.T) {
	for _, spec := range []string{"", "k1", "k1:notbase64!", "k1:c2hvcnQ=", "bad id:" + NewKey("x")[2:], NewKey("k1") + "," + NewKey("k1")} {
		_, err := ParseKeyring(spec)
		assert.Error(t, err, "spec %q", spec)
	}
}
