// Command render prints an overlay as kubectl would apply it, optionally one function alone with its
// image replaced:
//
//	render -overlay overlays/prod -func match -image registry.example.com/omnimember/match:v1.2.0 | kubectl apply -f -
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/omnimember/omnimember/deploy/manifest"
)

func main() {
	overlay := flag.String("overlay", "overlays/dev", "kustomization directory to render")
	function := flag.String("func", "", "only this function's objects (and the ConfigMaps it reads)")
	image := flag.String("image", "", "image reference for the function's container (needs -func)")
	flag.Parse()
	if err := run(*overlay, *function, *image); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(overlay, function, image string) error {
	objs, err := manifest.Render(overlay)
	if err != nil {
		return err
	}
	if function != "" {
		if objs, err = manifest.ForFunction(objs, function); err != nil {
			return err
		}
	}
	if image != "" {
		if function == "" {
			return fmt.Errorf("-image needs -func")
		}
		if err := manifest.SetImage(objs, function, image); err != nil {
			return err
		}
	}
	out, err := manifest.YAML(objs)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
