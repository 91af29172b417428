// Package image packs one function's static binary into a small OCI image without Docker: an empty
// base, one layer (the binary and the CA bundle), a non-root user, reproducible bytes.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// MaxBytes is the bar for an image's size unpacked, as a node stores it (MISSION §7: 25 MB).
const MaxBytes = 25 << 20

// Tags leave out of an image what a function in a cluster never runs, and weighs ~1.3 MB of a
// 26 MB binary (match, measured with go tool nm -size):
//   - grpcnotrace: gRPC's golang.org/x/net/trace debug pages (Firestore's gRPC client; ~0.4 MB);
//   - nethttpomithttp2: net/http's bundled HTTP/2 (~0.5 MB). The functions serve plain HTTP/1.1
//     behind Knative or a ClusterIP Service; Firestore's gRPC brings its own HTTP/2; OAuth,
//     OTLP and the platforms' APIs answer HTTP/1.1 too;
//   - noembedded: the embedded store (bbolt; ~0.4 MB): pods share Firestore (STORE=firestore is
//     checked by deploy's tests), and the build refuses STORE=embedded at start.
const Tags = "grpcnotrace,nethttpomithttp2,noembedded"

// DevRegistry and DevTag name the images of overlays/dev (and base): a registry on the developer's
// machine, as kind's local registry is, not Docker Hub's unqualified omnimember/<name>:latest,
// which a cluster would look for in someone else's namespace and pull again on every start.
const (
	DevRegistry = "localhost:5001/omnimember"
	DevTag      = "dev"
)

// LocalRef is the reference make image gives the tarball it writes: the one overlays/dev
// runs (kind load image-archive bin/<name>.tar makes it present on the nodes).
func LocalRef(name string) string { return DevRegistry + "/" + name + ":" + DevTag }

// Source is where an image's program is, relative to the repository root: a function's cmd, or
// deploy's setup job (nats-setup).
func Source(name string) (dir, pkg string) {
	if name == "nats-setup" {
		return "deploy", "./cmd/natssetup"
	}
	return filepath.Join("functions", name), "./cmd/" + name
}

// Compile builds name's static linux/amd64 binary into out as its module alone (GOWORK=off):
// stripped, without build paths, with Tags.
func Compile(root, name, out string) error {
	dir, pkg := Source(name)
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", Tags, "-ldflags=-s -w", "-o", abs, pkg)
	cmd.Dir = filepath.Join(root, dir)
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", name, err, msg)
	}
	return nil
}

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
