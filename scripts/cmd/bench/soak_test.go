package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSoakVerdict: level figures pass; heap, goroutines or a backlog rising from the first third
// of the run to the last fail.
func TestSoakVerdict(t *testing.T) {
	level := func(heap float64, goroutines int, backlog uint64) soakSample {
		return soakSample{heapMB: heap, goroutines: goroutines, backlog: backlog}
	}
	run := func(first, last soakSample) []soakSample {
		out := []soakSample{level(5, 100, 0)} // the warm-up sample is left out
		for range 4 {
			out = append(out, first)
		}
		for range 4 {
			out = append(out, last)
		}
		return out
	}
	tests := []struct {
		name        string
		first, last soakSample
		wantErr     string
	}{
		{"level", level(40, 500, 300), level(44, 510, 320), ""},
		{"heap grows", level(40, 500, 300), level(60, 500, 300), "heap grew"},
		{"small heap, a few MB more", level(10, 500, 300), level(17, 500, 300), ""},
		{"goroutines grow", level(40, 500, 300), level(40, 600, 300), "goroutines grew"},
		{"falling behind", level(40, 500, 300), level(40, 500, 30000), "fell behind"},
	}
	for _, tt := range tests {
		err := soakVerdict(run(tt.first, tt.last), 250, 250)
		if tt.wantErr == "" {
			assert.NoError(t, err, tt.name)
			continue
		}
		assert.ErrorContains(t, err, tt.wantErr, tt.name)
	}
}
