// Package amount adds amounts of fen and points with checks: a result outside the contract's
// bounds (events.MaxTotal) is an error, never a wrapped value.
package amount

import (
	"errors"
	"fmt"
	"math"

	"github.com/omnimember/omnimember/events"
)

// ErrOutOfBounds is an amount or a sum beyond what the contract allows: retrying cannot fix it,
// so handlers treat it as permanent (the event goes to the dead-letter stream with the reason).
var ErrOutOfBounds = errors.New("amount out of bounds")

// Add is a + b, refused when the sum leaves ±events.MaxTotal (or would wrap int64).
func Add(a, b int64) (int64, error) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, fmt.Errorf("%w: %d + %d overflows", ErrOutOfBounds, a, b)
	}
	s := a + b
	if s > events.MaxTotal || s < -events.MaxTotal {
		return 0, fmt.Errorf("%w: %d + %d is beyond ±%d", ErrOutOfBounds, a, b, events.MaxTotal)
	}
	return s, nil
}

// Sub is a - b with Add's checks.
func Sub(a, b int64) (int64, error) {
	if b == math.MinInt64 { // it has no negation
		return 0, fmt.Errorf("%w: %d - %d overflows", ErrOutOfBounds, a, b)
	}
	return Add(a, -b)
}

// Sum adds values with Add's checks.
func Sum(values ...int64) (int64, error) {
	var total int64
	for _, v := range values {
		var err error
		if total, err = Add(total, v); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// Fen checks one amount in fen: 0..events.MaxFen.
func Fen(what string, fen int64) error {
	if fen < 0 || fen > events.MaxFen {
		return fmt.Errorf("%w: %s %d fen: want 0..%d", ErrOutOfBounds, what, fen, events.MaxFen)
	}
	return nil
}

// Points checks the points one event moves: 0..events.MaxPoints.
func Points(what string, points int64) error {
	if points < 0 || points > events.MaxPoints {
		return fmt.Errorf("%w: %s %d points: want 0..%d", ErrOutOfBounds, what, points, events.MaxPoints)
	}
	return nil
}
