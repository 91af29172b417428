package signature

import (
	"errors"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
)

// The vector was computed outside this code with OpenSSL:
//
//	printf '1795600800\n{"type":"order.paid"}' | openssl dgst -sha256 -hmac 'pos-secret-1'
const (
	vectorBody = `{"type":"order.paid"}`
	vectorTS   = "1795600800"
	vectorSig  = "v1=b24596ff217625e76531bb09ce3e606b31b567164a119550c1aa187af891f92a"
)

func TestSignMatchesOpenSSL(t *testing.T) {
	assert.Equal(t, vectorSig, Sign("pos-secret-1", 1795600800, []byte(vectorBody)))
}

func TestVerify(t *testing.T) {
	at := time.Unix(1795600800, 0)
	shop := platform.Shop{SecretKey: "pos-secret-1"}
	rotating := platform.Shop{SecretKey: "new-secret", PreviousSecretKey: "pos-secret-1"}
	tests := []struct {
		name      string
		shop      platform.Shop
		ts, sig   string
		body      string
		received  time.Time
		wantValid bool
	}{
		{"vector", shop, vectorTS, vectorSig, vectorBody, at, true},
		{"upper-case v1 prefix is not v1", shop, vectorTS, "V1=" + vectorSig[3:], vectorBody, at, false},
		{"received 300 s later", shop, vectorTS, vectorSig, vectorBody, at.Add(300 * time.Second), true},
		{"received 301 s later (replay)", shop, vectorTS, vectorSig, vectorBody, at.Add(301 * time.Second), false},
		{"sent 301 s in the future", shop, vectorTS, vectorSig, vectorBody, at.Add(-301 * time.Second), false},
		{"body changed", shop, vectorTS, vectorSig, vectorBody + " ", at, false},
		{"timestamp changed", shop, "1795600801", vectorSig, vectorBody, at, false},
		{"timestamp not a number", shop, "2026-11-25", vectorSig, vectorBody, at, false},
		{"no signature", shop, vectorTS, "", vectorBody, at, false},
		{"previous secret during rotation", rotating, vectorTS, vectorSig, vectorBody, at, true},
		{"one of several signatures", shop, vectorTS, "v1=00, " + vectorSig, vectorBody, at, true},
		{"shop without secret", platform.Shop{"other": "x"}, vectorTS, vectorSig, vectorBody, at, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.shop, tc.ts, tc.sig, []byte(tc.body), tc.received)
			if tc.wantValid {
				assert.NoError(t, err)
				return
			}
			assert.True(t, errors.Is(err, platform.ErrSignature), "got %v", err)
		})
	}
}
