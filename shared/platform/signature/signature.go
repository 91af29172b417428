// Package signature verifies omnimember's own webhook signature, used by the brand's systems
// (POS, app backend): `v1=` + hex HMAC-SHA256(secret, timestamp + "\n" + body) with a timestamp
// window against replays.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
)

// Headers of a signed push.
const (
	HeaderTimestamp = "X-Omnimember-Timestamp" // unix seconds
	HeaderSignature = "X-Omnimember-Signature" // v1=<hex>, several comma-separated during a key rotation
)

// Window is how far a push's timestamp may be from when ingest received it (either way).
const Window = 300 * time.Second

// Secret names in a shop's credentials: the current one and, during a rotation, the previous one.
const (
	SecretKey         = "secret"
	PreviousSecretKey = "previousSecret"
)

// Sign is the v1 signature of body sent at ts (what a sender puts in X-Omnimember-Signature).
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'\n'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks the timestamp window against receivedAt and that one of the signatures in the
// header matches one of the shop's secrets. Every failure wraps platform.ErrSignature (401).
func Verify(shop platform.Shop, timestamp, header string, body []byte, receivedAt time.Time) error {
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not unix seconds", platform.ErrSignature, HeaderTimestamp, timestamp)
	}
	if skew := receivedAt.Sub(time.Unix(ts, 0)).Abs(); skew > Window {
		return fmt.Errorf("%w: timestamp %d is %s away from receipt, outside the %s window", platform.ErrSignature, ts, skew.Round(time.Second), Window)
	}
	for _, key := range []string{SecretKey, PreviousSecretKey} {
		secret := shop[key]
		if secret == "" {
			continue
		}
		want := Sign(secret, ts, body)
		for _, got := range strings.Split(header, ",") {
			if hmac.Equal([]byte(strings.TrimSpace(got)), []byte(want)) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", platform.ErrSignature)
}

// VerifyPush finds the sender (store, app) that the header idHeader names in creds and verifies
// the push with its secrets at the time ingest received it; it returns the sender's key.
func VerifyPush(push platform.Push, creds platform.Credentials, idHeader string) (string, error) {
	key := push.Header.Get(idHeader)
	shop, err := creds.Lookup(key)
	if err != nil {
		return "", fmt.Errorf("%s: %w", idHeader, err)
	}
	if err := Verify(shop, push.Header.Get(HeaderTimestamp), push.Header.Get(HeaderSignature), push.Body, push.ReceivedAt); err != nil {
		return "", fmt.Errorf("verify %s push from %s: %w", push.Platform, key, err)
	}
	return key, nil
}
