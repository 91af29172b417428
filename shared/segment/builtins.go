package segment

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"sort"

	"gopkg.in/yaml.v3"
)

//go:embed segments.yaml
var defaultFile []byte

// Named is a built-in segment: a rule with a title and a description for the console.
type Named struct {
	Name        string `json:"name" yaml:"-"`
	Title       string `json:"title" yaml:"title"`
	Description string `json:"description" yaml:"description"`
	Rule        Rule   `json:"rule" yaml:"rule"`
}

// Catalog is the built-in segments of a data file.
type Catalog struct {
	Version  string
	segments map[string]Named
}

type file struct {
	Version  string           `yaml:"version"`
	Segments map[string]Named `yaml:"segments"`
}

// FileEnv names the variable with the path of the brand's segments file (default: segments.yaml).
const FileEnv = "SEGMENTS_FILE"

// Default is the catalog of segments.yaml as shipped.
func Default() (*Catalog, error) { return Parse(defaultFile) }

// FromEnv loads SEGMENTS_FILE, or the shipped catalog when unset.
func FromEnv() (*Catalog, error) {
	path := os.Getenv(FileEnv)
	if path == "" {
		return Default()
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FileEnv, err)
	}
	c, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", FileEnv, path, err)
	}
	return c, nil
}

// Parse reads and validates a segments file: unknown fields, bad names and bad rules are errors
// that name the segment and the field.
func Parse(raw []byte) (*Catalog, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("segments file: %w", err)
	}
	if f.Version == "" {
		return nil, errors.New("segments file: version is required")
	}
	if len(f.Segments) == 0 {
		return nil, errors.New("segments file: no segments")
	}
	c := &Catalog{Version: f.Version, segments: map[string]Named{}}
	for n, s := range f.Segments {
		if !name.MatchString(n) {
			return nil, fmt.Errorf("segments file: segment name %q: want lower-case letters, digits, - or _", n)
		}
		if s.Title == "" {
			return nil, fmt.Errorf("segments file: segment %s: title is required", n)
		}
		if err := s.Rule.Validate(); err != nil {
			return nil, fmt.Errorf("segments file: segment %s: rule.%w", n, err)
		}
		s.Name = n
		c.segments[n] = s
	}
	return c, nil
}

// Get returns the named segment or ErrUnknown.
func (c *Catalog) Get(n string) (Named, error) {
	s, ok := c.segments[n]
	if !ok {
		return Named{}, fmt.Errorf("segment %q: %w", n, ErrUnknown)
	}
	return s, nil
}

// All lists the segments by name.
func (c *Catalog) All() []Named {
	out := make([]Named, 0, len(c.segments))
	for _, s := range c.segments {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
