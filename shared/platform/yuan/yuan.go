// Package yuan converts the decimal yuan strings platforms send ("12.30") into integer fen
// without floating point.
package yuan

import (
	"errors"
	"fmt"
	"strings"
)

// maxFen bounds amounts so that sums of a few orders never overflow int64 (10^15 fen = 10^13 yuan).
const maxFen = 1_000_000_000_000_000

// ToFen parses a non-negative yuan amount with at most two decimals ("129.9", "0.01", "30").
func ToFen(s string) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && (frac == "" || len(frac) > 2)) {
		return 0, fmt.Errorf("amount %q: want yuan like 12.30", s)
	}
	frac += strings.Repeat("0", 2-len(frac))
	var fen int64
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("amount %q: want yuan like 12.30", s)
		}
		fen = fen*10 + int64(c-'0')
		if fen > maxFen {
			return 0, errors.New("amount " + s + ": too large")
		}
	}
	return fen, nil
}
