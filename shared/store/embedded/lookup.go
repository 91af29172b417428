package embedded

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// Index maintenance needs one or two fields of every document written, and decoding a whole
// document into maps to read them was a twelfth of the chain's CPU. lookup walks the JSON instead,
// skipping what it does not need, and decodes only the value found. Documents reach it as the
// store's own encoding (json.Marshal of an object), so it checks structure, not every JSON rule;
// on anything it cannot walk the caller falls back to decoding the whole document.

var errNotWalkable = errors.New("document cannot be walked")

// lookup returns the raw JSON value at the dotted path in the object raw, as decoding raw into
// maps and reading the path would: the last of duplicate keys wins.
func lookup(raw []byte, path string) (value []byte, found bool, err error) {
	w := walker{b: raw}
	return w.member(path)
}

type walker struct {
	b []byte
	i int
}

// member reads the object at the walker's position and returns the value at path within it.
func (w *walker) member(path string) (value []byte, found bool, err error) {
	name, rest, nested := strings.Cut(path, ".")
	if !w.expect('{') {
		return nil, false, errNotWalkable
	}
	if w.expect('}') {
		return nil, false, nil
	}
	for {
		key, err := w.key()
		if err != nil {
			return nil, false, err
		}
		w.space()
		start := w.i
		if err := w.skip(); err != nil {
			return nil, false, err
		}
		if string(key) == name { // a later duplicate replaces what an earlier one gave
			value, found = w.b[start:w.i], true
			if nested {
				value, found, err = within(value, rest)
				if err != nil {
					return nil, false, err
				}
			}
		}
		if w.expect('}') {
			return value, found, nil
		}
		if !w.expect(',') {
			return nil, false, errNotWalkable
		}
	}
}

// within looks path up in value when it is an object; another kind has no fields.
func within(value []byte, path string) ([]byte, bool, error) {
	if value[0] != '{' {
		return nil, false, nil
	}
	inner := walker{b: value}
	return inner.member(path)
}

// key reads `"name":` and returns the name; an escaped name is not walked (the caller decodes).
func (w *walker) key() ([]byte, error) {
	w.space()
	start := w.i
	if err := w.skipString(); err != nil {
		return nil, err
	}
	name := w.b[start+1 : w.i-1]
	if bytes.IndexByte(name, '\\') >= 0 || !w.expect(':') {
		return nil, errNotWalkable
	}
	return name, nil
}

func (w *walker) space() {
	for w.i < len(w.b) && (w.b[w.i] == ' ' || w.b[w.i] == '\t' || w.b[w.i] == '\n' || w.b[w.i] == '\r') {
		w.i++
	}
}

// expect consumes c, after white space, if it is next.
func (w *walker) expect(c byte) bool {
	w.space()
	if w.i < len(w.b) && w.b[w.i] == c {
		w.i++
		return true
	}
	return false
}

// skip moves past one value: a string, an object or array (by depth, strings skipped whole),
// or a number or literal (up to the next delimiter).
func (w *walker) skip() error {
	if w.i >= len(w.b) {
		return errNotWalkable
	}
	switch w.b[w.i] {
	case '"':
		return w.skipString()
	case '{', '[':
		return w.skipNested()
	}
	start := w.i
	for w.i < len(w.b) && !endsScalar(w.b[w.i]) {
		w.i++
	}
	if w.i == start {
		return errNotWalkable
	}
	return nil
}

func endsScalar(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

func (w *walker) skipString() error {
	if w.i >= len(w.b) || w.b[w.i] != '"' {
		return errNotWalkable
	}
	for w.i++; w.i < len(w.b); w.i++ {
		switch w.b[w.i] {
		case '\\':
			w.i++
		case '"':
			w.i++
			return nil
		}
	}
	return errNotWalkable
}

func (w *walker) skipNested() error {
	depth := 0
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case '"':
			if err := w.skipString(); err != nil {
				return err
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
		w.i++
		if depth == 0 {
			return nil
		}
	}
	return errNotWalkable
}

// scalar decodes a looked-up value as decodeJSON would (numbers as json.Number).
func scalar(value []byte) (any, error) {
	switch {
	case len(value) > 1 && value[0] == '"' && bytes.IndexByte(value, '\\') < 0 && utf8.Valid(value):
		return string(value[1 : len(value)-1]), nil
	case string(value) == "true", string(value) == "false":
		return string(value) == "true", nil
	case len(value) > 0 && (value[0] == '-' || value[0] >= '0' && value[0] <= '9'):
		if !json.Valid(value) {
			return nil, errNotWalkable
		}
		return json.Number(value), nil
	}
	return decodeJSON(value)
}
