package backfill

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// checkpoint is what a run has had acknowledged, tied to the file it is about.
type checkpoint struct {
	File         string `json:"file"` // sha-256 of the file's size and first MiB
	Rows         int    `json:"rows"` // rows 1..Rows are in JetStream (or refused)
	RejectsBytes int64  `json:"rejectsBytes"`
	Complete     bool   `json:"complete"`
}

func fingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", info.Size())
	if _, err := io.CopyN(h, f, 1<<20); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// loadCheckpoint reads the checkpoint of path, or starts one. A checkpoint of another file is an
// error: resuming it would skip rows that were never imported.
func loadCheckpoint(cpPath, path string) (checkpoint, error) {
	fp, err := fingerprint(path)
	if err != nil {
		return checkpoint{}, err
	}
	raw, err := os.ReadFile(cpPath)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{File: fp}, nil
	}
	if err != nil {
		return checkpoint{}, err
	}
	var cp checkpoint
	if err := json.Unmarshal(raw, &cp); err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint %s: %w", cpPath, err)
	}
	if cp.File != fp {
		return checkpoint{}, fmt.Errorf("checkpoint %s belongs to another version of %s: remove it to import this one from the start", cpPath, path)
	}
	return cp, nil
}

// save replaces the checkpoint atomically (write, fsync, rename): a crash leaves the old or the new.
func (c checkpoint) save(path string) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
