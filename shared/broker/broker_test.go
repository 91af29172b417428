package broker

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncryptionAtRestHidesPayloads stores a message with and without a key and looks for it on disk.
func TestEncryptionAtRestHidesPayloads(t *testing.T) {
	secret := []byte(`{"type":"phone","value":"13812345678"}`)
	for _, key := range []string{"", "a-long-development-jetstream-key"} {
		dir := t.TempDir()
		srv, err := Start(Options{Dir: dir, EncryptionKey: key})
		require.NoError(t, err)
		nc, err := srv.Connect("test")
		require.NoError(t, err)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		ctx := context.Background()
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Storage: jetstream.FileStorage})
		require.NoError(t, err)
		_, err = js.Publish(ctx, "s", secret)
		require.NoError(t, err)
		nc.Close()
		srv.Shutdown()
		found := false
		require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				raw, _ := os.ReadFile(path)
				found = found || bytes.Contains(raw, []byte("13812345678"))
			}
			return err
		}))
		assert.Equal(t, key == "", found, "key %q: plaintext on disk", key)
	}
}
