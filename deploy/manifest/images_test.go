package manifest_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/deploy/image"
)

// TestImagesAreQualified: every container names its registry and a tag other than latest (or a
// digest) — no Docker Hub default, no image pulled again on each start — and overlays/dev runs the
// images make image writes (image.LocalRef).
func TestImagesAreQualified(t *testing.T) {
	for _, dir := range dirs {
		r := render(t, dir)
		for _, w := range r.workloads() {
			for _, c := range w.pod.Containers {
				where := dir + " " + w.where + " container " + c.Name
				ref, err := name.ParseReference(c.Image, name.StrictValidation)
				if !assert.NoError(t, err, "%s: image %s names no registry or no tag", where, c.Image) {
					continue
				}
				if tag, ok := ref.(name.Tag); ok {
					assert.NotEqual(t, "latest", tag.TagStr(), "%s: image %s", where, c.Image)
				}
				if filepath.Base(dir) == "dev" && (isFunction(c.Name) || c.Name == "nats-setup") {
					assert.Equal(t, image.LocalRef(c.Name), c.Image, "%s: got, want the image make image writes", where)
				}
			}
		}
	}
	_, err := name.ParseReference("omnimember/match", name.StrictValidation)
	require.Error(t, err, "the check refuses an unqualified image")
}
