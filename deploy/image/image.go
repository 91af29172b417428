// Package image packs one function's static binary into a small OCI image without Docker: an empty
// base, one layer (the binary and the CA bundle), a non-root user, reproducible bytes.
package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NonRoot is the user the function runs as (the distroless "nonroot" ids).
const NonRoot = "65532:65532"

// MaxBytes is the bar for an image's compressed size.
const MaxBytes = 25 << 20

// Build makes the image: the binary at /app/<function> as the entrypoint, the CA bundle, no shell.
func Build(function, binary, caFile string) (v1.Image, error) {
	files := map[string]string{"app/" + function: binary, "etc/ssl/certs/ca-certificates.crt": caFile}
	layer, err := tarLayer(files)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Created = v1.Time{Time: time.Unix(0, 0)} // reproducible: the same binary gives the same digest
	cfg.Config.Entrypoint = []string{"/app/" + function}
	cfg.Config.User = NonRoot
	cfg.Config.Env = []string{"PATH=/app"}
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.title": "omnimember-" + function,
		"org.opencontainers.image.source": "https://github.com/omnimember/omnimember"}
	return mutate.ConfigFile(img, cfg)
}

// tarLayer packs files (path in the image → file on disk) in a fixed order, with fixed times and
// root ownership; binaries under app/ are executable by anyone and writable by nobody.
func tarLayer(files map[string]string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"app/", "etc/", "etc/ssl/", "etc/ssl/certs/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := addFile(tw, p, files[p]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
}

func addFile(tw *tar.Writer, path, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	mode := int64(0o444)
	if strings.HasPrefix(path, "app/") {
		mode = 0o555
	}
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}

// Sizes returns the image's size as a registry stores it (compressed layers and config) and as
// it is on disk once unpacked.
func Sizes(img v1.Image) (compressed, uncompressed int64, err error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range layers {
		c, err := l.Size()
		if err != nil {
			return 0, 0, err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, err
		}
		u, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, 0, err
		}
		compressed, uncompressed = compressed+c, uncompressed+u
	}
	raw, err := img.RawConfigFile()
	return compressed + int64(len(raw)), uncompressed, err
}
