// Command image builds one function's static binary (image.Compile: as its module alone, with the
// image's build tags) and packs it into a small OCI image without Docker: an empty base, one layer
// (the binary and the CA bundle), a non-root user. It writes a tarball `docker load` and `crane`
// read, or pushes to a registry, prints the image's sizes and fails over the bar (unpacked).
//
//	image -func match -out ../bin/match.tar [-push registry.example.com/omnimember/match:v1]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/omnimember/omnimember/deploy/image"
)

func main() {
	function := flag.String("func", "", "function name (ingest, match, ...)")
	root := flag.String("root", "..", "the repository's root")
	binary := flag.String("binary", "", "where to write the binary (default: beside -out, or a temp file)")
	out := flag.String("out", "", "write a tarball here")
	push := flag.String("push", "", "push to this image reference instead")
	caFile := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle for TLS to Firestore and platform APIs")
	flag.Parse()
	if err := run(*root, *function, *binary, *out, *push, *caFile); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(root, function, binary, out, push, caFile string) error {
	if function == "" || (out == "") == (push == "") {
		return fmt.Errorf("want -func and one of -out or -push")
	}
	if binary == "" {
		dir, err := os.MkdirTemp("", "image")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		binary = dir + "/" + function
	}
	if err := image.Compile(root, function, binary); err != nil {
		return err
	}
	img, err := image.Build(function, binary, caFile)
	if err != nil {
		return err
	}
	compressed, uncompressed, err := image.Sizes(img)
	if err != nil {
		return err
	}
	if push != "" {
		ref, err := name.ParseReference(push)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("push %s: %w", push, err)
		}
		digest, _ := img.Digest()
		fmt.Printf("%s@%s\n", ref.Context(), digest)
	} else {
		ref, err := name.NewTag(image.LocalRef(function))
		if err != nil {
			return err
		}
		if err := tarball.WriteToFile(out, ref, img); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
	fmt.Printf("image %-14s %6.2f MiB compressed, %6.2f MiB uncompressed (%d bytes; bar %.0f MiB unpacked)\n",
		function, mb(compressed), mb(uncompressed), uncompressed, mb(image.MaxBytes))
	if uncompressed > image.MaxBytes {
		return fmt.Errorf("%s is %d bytes unpacked, over the %d-byte bar", function, uncompressed, int64(image.MaxBytes))
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
