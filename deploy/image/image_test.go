package image_test

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/deploy/image"
)

// TestMatchImage builds the real match binary as `make image` does, packs it, and reads the tarball
// back as a registry client would: non-root, the binary as entrypoint, under the size bar, and the
// same bytes twice.
func TestMatchImage(t *testing.T) {
	dir := t.TempDir()
	binary := filepath.Join(dir, "match")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binary, "./cmd/match")
	build.Dir = "../../functions/match"
	build.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	ca := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600))
	img, err := image.Build("match", binary, ca)
	require.NoError(t, err)
	again, err := image.Build("match", binary, ca)
	require.NoError(t, err)
	d1, err := img.Digest()
	require.NoError(t, err)
	d2, err := again.Digest()
	require.NoError(t, err)
	assert.Equal(t, d1, d2, "the same binary must give the same image")

	path := filepath.Join(dir, "match.tar")
	require.NoError(t, tarball.WriteToFile(path, name.MustParseReference("omnimember/match:test"), img))
	loaded, err := tarball.ImageFromPath(path, nil)
	require.NoError(t, err)
	cfg, err := loaded.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, image.NonRoot, cfg.Config.User)
	assert.Equal(t, []string{"/app/match"}, cfg.Config.Entrypoint)
	assert.Equal(t, "linux", cfg.OS)

	compressed, uncompressed, err := image.Sizes(loaded)
	require.NoError(t, err)
	assert.Less(t, compressed, int64(image.MaxBytes), "compressed size")
	assert.Greater(t, uncompressed, compressed)

	modes := map[string]int64{}
	tr := tar.NewReader(mutate.Extract(loaded))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		modes[h.Name] = h.Mode
		assert.Zero(t, h.Uid, "%s: owned by root, not writable by the non-root user", h.Name)
	}
	assert.Equal(t, map[string]int64{"app": 0o755, "etc": 0o755, "etc/ssl": 0o755, "etc/ssl/certs": 0o755,
		"app/match": 0o555, "etc/ssl/certs/ca-certificates.crt": 0o444}, modes)
}
