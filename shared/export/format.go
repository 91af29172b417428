// Package export reads the platforms' order and member export files (CSV or JSON lines) and turns
// each row into the contract's events, so history can be backfilled through the chain.
package export

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/omnimember/omnimember/events"
	"gopkg.in/yaml.v3"
)

// Kinds of export.
const (
	KindOrders  = "orders"
	KindMembers = "members"
)

// Format says which columns of one platform's export hold which field.
type Format struct {
	Name       string              `yaml:"-"`
	Kind       string              `yaml:"kind"`
	Channel    string              `yaml:"channel"`
	Columns    map[string][]string `yaml:"columns"`    // field → titles it may have
	Identities map[string][]string `yaml:"identities"` // identity type → titles it may have
}

// fields each kind reads; the required ones must have titles.
var (
	orderFields    = []string{"orderId", "shopId", "amount", "paidAt", "refundAmount", "refundedAt", "phone"}
	memberFields   = []string{"shopId", "registeredAt", "phone"}
	requiredFields = map[string][]string{KindOrders: {"orderId", "amount", "paidAt"}, KindMembers: {"registeredAt"}}
)

//go:embed formats.yaml
var builtin []byte

// Builtin returns the formats shipped with omnimember.
func Builtin() (map[string]Format, error) { return ParseFormats(builtin) }

// ParseFormats reads and validates a formats file.
func ParseFormats(raw []byte) (map[string]Format, error) {
	var out map[string]Format
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("export formats: %w", err)
	}
	var errs []error
	for name, f := range out {
		f.Name = name
		out[name] = f
		if err := f.validate(); err != nil {
			errs = append(errs, fmt.Errorf("export format %s: %w", name, err))
		}
	}
	return out, errors.Join(errs...)
}

func (f Format) validate() error {
	fields := map[string][]string{KindOrders: orderFields, KindMembers: memberFields}[f.Kind]
	if fields == nil {
		return fmt.Errorf("kind %q: want %s or %s", f.Kind, KindOrders, KindMembers)
	}
	if !slices.Contains(events.Channels, f.Channel) {
		return fmt.Errorf("channel %q: want one of %v", f.Channel, events.Channels)
	}
	for field := range f.Columns {
		if !slices.Contains(fields, field) {
			return fmt.Errorf("columns.%s: not a field of %s exports (%v)", field, f.Kind, fields)
		}
	}
	for _, field := range requiredFields[f.Kind] {
		if len(f.Columns[field]) == 0 {
			return fmt.Errorf("columns.%s: required", field)
		}
	}
	if len(f.Identities) == 0 && len(f.Columns["phone"]) == 0 {
		return errors.New("no identity columns and no phone: rows could not name a member")
	}
	return nil
}

// Names lists formats in a stable order for help texts.
func Names(formats map[string]Format) []string {
	names := make([]string, 0, len(formats))
	for n := range formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
