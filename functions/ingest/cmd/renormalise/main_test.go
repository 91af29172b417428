package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    flags
		wantErr string
	}{
		{"window", []string{"-platform", "pos", "-since", "2026-11-01T00:00:00Z", "-until", "2026-11-02T00:00:00+08:00", "-revision", "3", "-dry-run"},
			flags{dryRun: true, revision: 3}, ""},
		{"no since", []string{"-platform", "pos"}, flags{}, "-since"},
		{"bad until", []string{"-since", "2026-11-01T00:00:00Z", "-until", "yesterday"}, flags{}, "-until"},
		{"until before since", []string{"-since", "2026-11-02T00:00:00Z", "-until", "2026-11-01T00:00:00Z"}, flags{}, "before"},
		{"negative revision", []string{"-since", "2026-11-01T00:00:00Z", "-until", "2026-11-02T00:00:00Z", "-revision", "-1"}, flags{}, "revision"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlags(tc.args)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want.dryRun, got.dryRun)
			assert.Equal(t, tc.want.revision, got.revision)
			assert.Equal(t, "pos", got.window.Platform)
			assert.True(t, got.window.Since.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)))
			assert.True(t, got.window.Until.Equal(time.Date(2026, 11, 1, 16, 0, 0, 0, time.UTC)))
		})
	}
}
