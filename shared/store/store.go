// Package store is a document store shaped after Firestore: collections of JSON documents,
// transactions that read then write several documents atomically, and simple queries.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound: the document does not exist.
	ErrNotFound = errors.New("document not found")
	// ErrExists: Create found the document already there.
	ErrExists = errors.New("document already exists")
	// ErrReadAfterWrite: a transaction read after it wrote, which Firestore forbids.
	ErrReadAfterWrite = errors.New("transaction read after a write")
	// ErrInvalidName: a collection or document id the stores cannot hold.
	ErrInvalidName = errors.New("invalid collection or document id")
)

// Store is one document database.
type Store interface {
	// Get decodes the document into dst, or returns ErrNotFound.
	Get(ctx context.Context, collection, id string, dst any) error
	// Set replaces the document with src encoded as JSON.
	Set(ctx context.Context, collection, id string, src any) error
	// Delete removes the document; deleting a missing document is not an error.
	Delete(ctx context.Context, collection, id string) error
	// RunTransaction runs fn atomically; fn may run more than once and must not have side effects
	// outside tx. All reads come before the first write.
	RunTransaction(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Query returns the documents of a collection that match every filter.
	Query(ctx context.Context, q Query) ([]Document, error)
	Close() error
}

// Lister lists the collections that hold documents: what an audit walks to see everything stored
// (an erasure's check, say). Both stores implement it.
type Lister interface {
	Collections(ctx context.Context) ([]string, error)
}

// Tx is a transaction's view of the store.
type Tx interface {
	Get(collection, id string, dst any) error
	// GetAll reads several documents at once; missing ones come back with Exists false.
	GetAll(collection string, ids []string) ([]Document, error)
	// Create writes a new document; the transaction fails with ErrExists if it is already there.
	Create(collection, id string, src any) error
	Set(collection, id string, src any) error
	Delete(collection, id string) error
}

// GetOne is Tx.Get for implementations that read through GetAll.
func GetOne(tx Tx, collection, id string, dst any) error {
	docs, err := tx.GetAll(collection, []string{id})
	if err != nil {
		return err
	}
	if !docs[0].Exists {
		return fmt.Errorf("%s/%s: %w", collection, id, ErrNotFound)
	}
	return docs[0].DataTo(dst)
}

// Document is one stored document as JSON.
type Document struct {
	ID     string
	Exists bool
	Data   json.RawMessage
}

// DataTo decodes the document into dst.
func (d Document) DataTo(dst any) error {
	if !d.Exists {
		return fmt.Errorf("decode document %s: %w", d.ID, ErrNotFound)
	}
	if err := json.Unmarshal(d.Data, dst); err != nil {
		return fmt.Errorf("decode document %s: %w", d.ID, err)
	}
	return nil
}

// Operators a Filter may use.
const (
	OpEq  = "=="
	OpLt  = "<"
	OpLte = "<="
	OpGt  = ">"
	OpGte = ">="
)

// Filter compares a field (a dotted path such as `orders.count`) with a value.
type Filter struct {
	Field string
	Op    string
	Value any
}

// Query selects documents of one collection; OrderBy (a field path) and Limit are optional.
type Query struct {
	Collection string
	Filters    []Filter
	OrderBy    string
	Descending bool
	Limit      int
}

// Names are checked byte by byte rather than with regular expressions: the document id pattern
// `^[A-Za-z0-9_.:@+=-]{1,512}$` compiles to a program of 512 copies of its class, which cost every
// function several milliseconds and 400 KB of its cold start.

// validCollection is `^[a-z][a-z0-9_-]{0,63}$`.
func validCollection(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validDocumentID is `^[A-Za-z0-9_.:@+=-]{1,512}$`.
func validDocumentID(s string) bool {
	if len(s) == 0 || len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:@+=-", c) >= 0) {
			return false
		}
	}
	return true
}

// CheckNames rejects names that one of the implementations could not store faithfully.
func CheckNames(collection, id string) error {
	if err := checkCollection(collection); err != nil {
		return err
	}
	if !validDocumentID(id) || id == "." || id == ".." || (strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__")) {
		return fmt.Errorf("document id %q: %w", id, ErrInvalidName)
	}
	return nil
}

func checkCollection(collection string) error {
	if !validCollection(collection) {
		return fmt.Errorf("collection %q: %w", collection, ErrInvalidName)
	}
	return nil
}

// CheckQuery validates a query's collection and operators.
func CheckQuery(q Query) error {
	if err := checkCollection(q.Collection); err != nil {
		return err
	}
	for _, f := range q.Filters {
		switch f.Op {
		case OpEq, OpLt, OpLte, OpGt, OpGte:
		default:
			return fmt.Errorf("query %s: unsupported operator %q on %s", q.Collection, f.Op, f.Field)
		}
		if f.Field == "" {
			return fmt.Errorf("query %s: filter without a field", q.Collection)
		}
	}
	return nil
}

// IDQuerier answers a query with the ids of the matching documents alone, reading an index instead
// of the documents where it can (segment counts over a million members stay cheap).
type IDQuerier interface {
	QueryIDs(ctx context.Context, q Query) ([]string, error)
}

// QueryIDs returns the ids of the documents q selects, through IDQuerier when the store has it.
func QueryIDs(ctx context.Context, s interface {
	Query(ctx context.Context, q Query) ([]Document, error)
}, q Query) ([]string, error) {
	if iq, ok := s.(IDQuerier); ok {
		return iq.QueryIDs(ctx, q)
	}
	docs, err := s.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}
