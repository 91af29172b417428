// Package identity normalises channel identities: phone numbers, their hashes and masks, and id types.
package identity

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPhone says a value is not a mainland mobile number after normalisation.
var ErrInvalidPhone = errors.New("not a mainland mobile number (1[3-9] and 9 more digits)")

// NormalizePhone strips country prefixes (+86, 0086, 86), spaces, dashes, dots, brackets and
// full-width forms, and checks the result is an 11-digit mainland mobile number 1[3-9]xxxxxxxxx.
func NormalizePhone(raw string) (string, error) {
	digits := make([]byte, 0, 16)
	international := false
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case r >= '０' && r <= '９': // full-width digits U+FF10..U+FF19
			digits = append(digits, byte('0'+(r-'０')))
		case r == '+' || r == '＋':
			if len(digits) > 0 {
				return "", fmt.Errorf("%w: '+' inside the number", ErrInvalidPhone)
			}
			international = true
		case strings.ContainsRune(" \t-－.()（）\u3000", r):
		default:
			return "", fmt.Errorf("%w: unexpected character %q", ErrInvalidPhone, r)
		}
	}
	s := string(digits)
	if international && !strings.HasPrefix(s, "86") {
		return "", fmt.Errorf("%w: country code is not +86", ErrInvalidPhone)
	}
	for _, prefix := range []string{"0086", "86"} {
		if len(s) == 11+len(prefix) && strings.HasPrefix(s, prefix) {
			s = s[len(prefix):]
			break
		}
	}
	if !isMobile(s) {
		return "", ErrInvalidPhone
	}
	return s, nil
}

func isMobile(s string) bool {
	if len(s) != 11 || s[0] != '1' || s[1] < '3' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// PhoneSHA256 is the lowercase hex SHA-256 of a normalised phone, as platforms exchange it.
func PhoneSHA256(normalized string) string {
	sum := sha256.Sum256([]byte(normalized))
	return hex.EncodeToString(sum[:])
}

// PhoneMD5 is the lowercase hex MD5 of a normalised phone (some platforms hash with MD5).
func PhoneMD5(normalized string) string {
	sum := md5.Sum([]byte(normalized))
	return hex.EncodeToString(sum[:])
}

// MaskPhone shows a normalised phone the way people may see it: 138****5678.
func MaskPhone(normalized string) string {
	if len(normalized) != 11 {
		return "***"
	}
	return normalized[:3] + "****" + normalized[7:]
}
