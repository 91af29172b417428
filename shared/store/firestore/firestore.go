// Package firestore is the production document store on Google Cloud Firestore.
package firestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	gfs "cloud.google.com/go/firestore"
	"github.com/omnimember/omnimember/shared/store"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Store keeps documents in Firestore collections, optionally under a name prefix so several
// environments can share a database.
type Store struct {
	client *gfs.Client
	prefix string
}

var _ store.Store = (*Store)(nil)

// Config selects the project, database and collection prefix. With FIRESTORE_EMULATOR_HOST set,
// the client talks to the emulator without credentials.
type Config struct {
	ProjectID  string
	DatabaseID string
	Prefix     string
}

// Open connects to Firestore.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.ProjectID == "" {
		return nil, errors.New("firestore: a project id is required")
	}
	db := cfg.DatabaseID
	if db == "" {
		db = gfs.DefaultDatabaseID
	}
	client, err := gfs.NewClientWithDatabase(ctx, cfg.ProjectID, db)
	if err != nil {
		return nil, fmt.Errorf("connect to firestore project %s database %s: %w", cfg.ProjectID, db, err)
	}
	return &Store{client: client, prefix: cfg.Prefix}, nil
}

// Close closes the client.
func (s *Store) Close() error { return s.client.Close() }

func (s *Store) doc(collection, id string) (*gfs.DocumentRef, error) {
	if err := store.CheckNames(collection, id); err != nil {
		return nil, err
	}
	return s.client.Collection(s.prefix + collection).Doc(id), nil
}

// Collections implements store.Lister: the collections under the prefix (without it), sorted.
func (s *Store) Collections(ctx context.Context) ([]string, error) {
	var out []string
	it := s.client.Collections(ctx)
	for {
		ref, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list collections: %w", err)
		}
		if name, ok := strings.CutPrefix(ref.ID, s.prefix); ok && name != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, collection, id string, dst any) error {
	ref, err := s.doc(collection, id)
	if err != nil {
		return err
	}
	snap, err := ref.Get(ctx)
	doc, err := toDocument(id, snap, err)
	if err != nil {
		return fmt.Errorf("get %s/%s: %w", collection, id, err)
	}
	if !doc.Exists {
		return fmt.Errorf("%s/%s: %w", collection, id, store.ErrNotFound)
	}
	return doc.DataTo(dst)
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, collection, id string, src any) error {
	ref, err := s.doc(collection, id)
	if err != nil {
		return err
	}
	fields, err := toFields(src)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", collection, id, err)
	}
	_, err = ref.Set(ctx, fields)
	return err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, collection, id string) error {
	ref, err := s.doc(collection, id)
	if err != nil {
		return err
	}
	_, err = ref.Delete(ctx)
	return err
}

// RunTransaction implements store.Store; Firestore retries fn when the transaction aborts on contention.
func (s *Store) RunTransaction(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	err := s.client.RunTransaction(ctx, func(ctx context.Context, ftx *gfs.Transaction) error {
		return fn(ctx, &tx{s: s, ftx: ftx})
	}, gfs.MaxAttempts(20))
	if status.Code(err) == codes.AlreadyExists {
		return fmt.Errorf("%w: %v", store.ErrExists, err)
	}
	return err
}

// Query implements store.Store.
func (s *Store) Query(ctx context.Context, q store.Query) ([]store.Document, error) {
	query, err := s.build(q)
	if err != nil {
		return nil, err
	}
	it := query.Documents(ctx)
	defer it.Stop()
	var out []store.Document
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil { // snap is nil then (a cancelled context at shutdown, say)
			return nil, fmt.Errorf("query %s: %w", q.Collection, err)
		}
		doc, err := toDocument(snap.Ref.ID, snap, nil)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.Collection, err)
		}
		out = append(out, doc)
	}
}

// QueryIDs implements store.IDQuerier: a projection on no field, so Firestore sends names only.
func (s *Store) QueryIDs(ctx context.Context, q store.Query) ([]string, error) {
	query, err := s.build(q)
	if err != nil {
		return nil, err
	}
	it := query.Select().Documents(ctx)
	defer it.Stop()
	var out []string
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("query ids of %s: %w", q.Collection, err)
		}
		out = append(out, snap.Ref.ID)
	}
}

func (s *Store) build(q store.Query) (gfs.Query, error) {
	if err := store.CheckQuery(q); err != nil {
		return gfs.Query{}, err
	}
	query := s.client.Collection(s.prefix + q.Collection).Query
	for _, f := range q.Filters {
		v, err := toValue(f.Value)
		if err != nil {
			return gfs.Query{}, fmt.Errorf("filter on %s: %w", f.Field, err)
		}
		query = query.Where(f.Field, f.Op, v)
	}
	if q.OrderBy != "" {
		dir := gfs.Asc
		if q.Descending {
			dir = gfs.Desc
		}
		query = query.OrderBy(q.OrderBy, dir)
	}
	if q.Limit > 0 {
		query = query.Limit(q.Limit)
	}
	return query, nil
}

type tx struct {
	s   *Store
	ftx *gfs.Transaction
}

func (t *tx) Get(collection, id string, dst any) error { return store.GetOne(t, collection, id, dst) }

func (t *tx) GetAll(collection string, ids []string) ([]store.Document, error) {
	refs := make([]*gfs.DocumentRef, len(ids))
	for i, id := range ids {
		ref, err := t.s.doc(collection, id)
		if err != nil {
			return nil, err
		}
		refs[i] = ref
	}
	snaps, err := t.ftx.GetAll(refs)
	if err != nil {
		if isReadAfterWrite(err) {
			return nil, store.ErrReadAfterWrite
		}
		return nil, fmt.Errorf("read %d documents of %s: %w", len(ids), collection, err)
	}
	out := make([]store.Document, len(ids))
	for i, snap := range snaps {
		if out[i], err = toDocument(ids[i], snap, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t *tx) Create(collection, id string, src any) error {
	return t.write(collection, id, src, func(ref *gfs.DocumentRef, f map[string]any) error { return t.ftx.Create(ref, f) })
}

func (t *tx) Set(collection, id string, src any) error {
	return t.write(collection, id, src, func(ref *gfs.DocumentRef, f map[string]any) error { return t.ftx.Set(ref, f) })
}

func (t *tx) write(collection, id string, src any, op func(*gfs.DocumentRef, map[string]any) error) error {
	ref, err := t.s.doc(collection, id)
	if err != nil {
		return err
	}
	fields, err := toFields(src)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", collection, id, err)
	}
	return op(ref, fields)
}

func (t *tx) Delete(collection, id string) error {
	ref, err := t.s.doc(collection, id)
	if err != nil {
		return err
	}
	return t.ftx.Delete(ref)
}

func isReadAfterWrite(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("read after write"))
}

// toFields converts a Go value to Firestore fields through its JSON form, so both stores hold
// exactly what the value's json tags say.
func toFields(src any) (map[string]any, error) {
	v, err := toValue(src)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a document must encode to a JSON object, got %T", v)
	}
	return m, nil
}

func toValue(src any) (any, error) {
	raw, err := json.Marshal(src)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbersToNative(v), nil
}

// numbersToNative turns json.Number into int64 where exact, else float64, as Firestore stores them.
func numbersToNative(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbersToNative(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbersToNative(e)
		}
	}
	return v
}

func toDocument(id string, snap *gfs.DocumentSnapshot, err error) (store.Document, error) {
	if status.Code(err) == codes.NotFound {
		return store.Document{ID: id}, nil
	}
	if err != nil {
		return store.Document{}, err
	}
	if snap == nil || !snap.Exists() {
		return store.Document{ID: id}, nil
	}
	raw, err := json.Marshal(snap.Data())
	if err != nil {
		return store.Document{}, fmt.Errorf("re-encode document %s: %w", id, err)
	}
	return store.Document{ID: id, Exists: true, Data: raw}, nil
}
