package image_test

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/deploy/image"
	"github.com/omnimember/omnimember/deploy/natsauth"
)

// images are every image a cluster runs: the functions and the setup job.
func images() []string { return append(append([]string(nil), natsauth.Functions...), natsauth.Setup) }

// TestImagesUnderTheBar builds every image as make image does (image.Compile, then image.Build),
// reads the tarball back as a registry client would, and measures it unpacked: under the bar,
// non-root, the binary as entrypoint, the same bytes twice.
func TestImagesUnderTheBar(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600))
	for _, fn := range images() {
		t.Run(fn, func(t *testing.T) {
			dir := t.TempDir()
			binary := filepath.Join(dir, fn)
			require.NoError(t, image.Compile("../..", fn, binary))
			img, err := image.Build(fn, binary, ca)
			require.NoError(t, err)
			again, err := image.Build(fn, binary, ca)
			require.NoError(t, err)
			d1, err := img.Digest()
			require.NoError(t, err)
			d2, err := again.Digest()
			require.NoError(t, err)
			assert.Equal(t, d1, d2, "the same binary must give the same image")

			path := filepath.Join(dir, fn+".tar")
			ref, err := name.ParseReference(image.LocalRef(fn))
			require.NoError(t, err)
			require.NoError(t, tarball.WriteToFile(path, ref, img))
			loaded, err := tarball.ImageFromPath(path, nil)
			require.NoError(t, err)
			cfg, err := loaded.ConfigFile()
			require.NoError(t, err)
			assert.Equal(t, image.NonRoot, cfg.Config.User)
			assert.Equal(t, []string{"/app/" + fn}, cfg.Config.Entrypoint)
			assert.Equal(t, "linux", cfg.OS)

			compressed, uncompressed, err := image.Sizes(loaded)
			require.NoError(t, err)
			t.Logf("%s: %d bytes unpacked (%.2f MiB), %d compressed", fn, uncompressed, float64(uncompressed)/(1<<20), compressed)
			assert.Less(t, uncompressed, int64(image.MaxBytes), "got bytes unpacked, want under the bar")
			assert.Greater(t, uncompressed, compressed)
			checkModes(t, loaded, fn)
		})
	}
}

// checkModes: everything owned by root, the binary executable by anyone and writable by nobody.
func checkModes(t *testing.T, img v1.Image, fn string) {
	t.Helper()
	modes := map[string]int64{}
	tr := tar.NewReader(mutate.Extract(img))
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
		"app/" + fn: 0o555, "etc/ssl/certs/ca-certificates.crt": 0o444}, modes, "got, want")
}
