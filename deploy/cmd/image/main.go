// Command image packs one function's static binary into a small OCI image without Docker: an empty
// base, one layer (the binary and the CA bundle), a non-root user. It writes a tarball `docker load`
// and `crane` read, or pushes to a registry, and prints the image's sizes.
//
//	image -func match -binary ../bin/match -out ../bin/match.tar [-push registry.example.com/omnimember/match:v1]
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
	binary := flag.String("binary", "", "the function's static binary")
	out := flag.String("out", "", "write a tarball here")
	push := flag.String("push", "", "push to this image reference instead")
	caFile := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle for TLS to Firestore and platform APIs")
	flag.Parse()
	if err := run(*function, *binary, *out, *push, *caFile); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(function, binary, out, push, caFile string) error {
	if function == "" || binary == "" || (out == "") == (push == "") {
		return fmt.Errorf("want -func, -binary and one of -out or -push")
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
		ref, err := name.NewTag("omnimember/" + function + ":local")
		if err != nil {
			return err
		}
		if err := tarball.WriteToFile(out, ref, img); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
	fmt.Printf("image %-14s %6.1f MB compressed, %6.1f MB uncompressed (bar %.0f MB)\n", function, mb(compressed), mb(uncompressed), mb(image.MaxBytes))
	if compressed > image.MaxBytes {
		return fmt.Errorf("%s is over the %.0f MB bar", function, mb(image.MaxBytes))
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
