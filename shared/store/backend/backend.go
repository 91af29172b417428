// Package backend opens the document store a function is configured for: embedded (default) or Firestore.
package backend

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/firestore"
)

// Kinds of store.
const (
	Embedded  = "embedded"
	Firestore = "firestore"
)

// Config selects and locates the store.
type Config struct {
	Kind              string // STORE: embedded | firestore
	Path              string // STORE_PATH: the embedded store's file
	NoSync            bool   // STORE_NOSYNC=1: skip fsync on commit (survives a process kill, not an OS crash)
	FirestoreProject  string // FIRESTORE_PROJECT, else GOOGLE_CLOUD_PROJECT
	FirestoreDatabase string // FIRESTORE_DATABASE, default (default)
	FirestorePrefix   string // FIRESTORE_PREFIX: collection name prefix, to share a database
	// Indexes are the embedded store's field indexes (the caller's queries decide them).
	Indexes map[string][]string
	// Expire names the time fields after which the embedded store deletes a document (Firestore's
	// TTL policies, deployed from deploy/firestore, do it there).
	Expire map[string]string
}

// FromEnv reads the store variables and validates them.
func FromEnv() (Config, error) {
	c := Config{Kind: Embedded, Path: ".data/omnimember.db"}
	if v := os.Getenv("STORE"); v != "" {
		c.Kind = v
	}
	if v := os.Getenv("STORE_PATH"); v != "" {
		c.Path = v
	}
	c.NoSync = os.Getenv("STORE_NOSYNC") == "1"
	c.FirestoreProject = os.Getenv("FIRESTORE_PROJECT")
	if c.FirestoreProject == "" {
		c.FirestoreProject = os.Getenv("GOOGLE_CLOUD_PROJECT")
	}
	c.FirestoreDatabase = os.Getenv("FIRESTORE_DATABASE")
	c.FirestorePrefix = os.Getenv("FIRESTORE_PREFIX")
	return c, c.Validate()
}

// Validate checks the chosen kind has what it needs.
func (c Config) Validate() error {
	switch c.Kind {
	case Embedded:
		if c.Path == "" {
			return fmt.Errorf("STORE_PATH is empty")
		}
	case Firestore:
		if c.FirestoreProject == "" {
			return fmt.Errorf("STORE=firestore needs FIRESTORE_PROJECT (or GOOGLE_CLOUD_PROJECT)")
		}
	default:
		return fmt.Errorf("STORE %q: want %s or %s", c.Kind, Embedded, Firestore)
	}
	return nil
}

// Open opens the configured store.
func (c Config) Open(ctx context.Context) (store.Store, error) {
	if c.Kind == Firestore {
		return firestore.Open(ctx, firestore.Config{ProjectID: c.FirestoreProject, DatabaseID: c.FirestoreDatabase, Prefix: c.FirestorePrefix})
	}
	return c.openEmbedded()
}

// LogValue describes the store at start.
func (c Config) LogValue() slog.Value {
	if c.Kind == Firestore {
		return slog.GroupValue(slog.String("kind", c.Kind), slog.String("project", c.FirestoreProject),
			slog.String("database", c.FirestoreDatabase), slog.String("prefix", c.FirestorePrefix),
			slog.String("emulator", os.Getenv("FIRESTORE_EMULATOR_HOST")))
	}
	return slog.GroupValue(slog.String("kind", c.Kind), slog.String("path", c.Path), slog.Bool("noSync", c.NoSync))
}

// OpenFromEnv reads the store variables and opens the store they select, with the given indexes;
// the embedded store deletes expired receipts as Firestore's TTL policy does.
func OpenFromEnv(ctx context.Context, indexes map[string][]string) (store.Store, Config, error) {
	c, err := FromEnv()
	if err != nil {
		return nil, c, err
	}
	c.Indexes, c.Expire = indexes, receipt.Expiry
	st, err := c.Open(ctx)
	return st, c, err
}
