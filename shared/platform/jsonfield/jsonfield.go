// Package jsonfield reads the fields of platform JSON payloads and names the first one that is
// wrong by its path ("[0].data.p_id"), so that a malformed push gets a 400 naming the field.
package jsonfield

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
)

// MaxIDLen bounds ids copied into events (document keys, scopes).
const MaxIDLen = 64

// maxUnix is 9999-12-31T23:59:59Z, the last second RFC 3339 can carry.
const maxUnix = 253402300799

// Object is one decoded JSON object. Accessors record the first error met in the object or in
// any object nested in it; Err returns it.
type Object struct {
	path  string
	raw   map[string]json.RawMessage
	first *error
}

// Decode reads b as a JSON object found at path.
func Decode(path string, b []byte) (*Object, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, platform.Malformed(path, "want a JSON object")
	}
	return &Object{path: path, raw: raw, first: new(error)}, nil
}

// Err is the first error met, a field error naming the path.
func (o *Object) Err() error { return *o.first }

func (o *Object) record(err error) {
	if *o.first == nil {
		*o.first = err
	}
}

func (o *Object) nested(path string, b []byte) *Object {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		o.record(platform.Malformed(path, "want a JSON object"))
		return &Object{path: path, first: o.first}
	}
	return &Object{path: path, raw: raw, first: o.first}
}

// Path is where the object sits in the payload.
func (o *Object) Path() string { return o.path }

// Has reports whether the field is present and not null.
func (o *Object) Has(name string) bool {
	v, ok := o.raw[name]
	return ok && string(v) != "null"
}

// Raw returns a field's JSON text.
func (o *Object) Raw(name string) json.RawMessage { return o.raw[name] }

// Fail records an error for the named field unless one is recorded already.
func (o *Object) Fail(name, format string, args ...any) {
	o.record(platform.Malformed(o.field(name), format, args...))
}

func (o *Object) field(name string) string {
	if o.path == "" {
		return name
	}
	return o.path + "." + name
}

// Scalar returns a field that may be a JSON string or a JSON number as its literal text: platforms
// send ids such as Douyin's p_id (> 2^53) as bare numbers, which must never pass through a float64.
func (o *Object) Scalar(name string) (string, bool) {
	if !o.Has(name) {
		return "", false
	}
	v := o.raw[name]
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			o.Fail(name, "not a string")
			return "", true
		}
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		o.Fail(name, "want a string or a number")
		return "", true
	}
	return n.String(), true
}

// Optional returns a string or number field, "" when absent.
func (o *Object) Optional(name string) string {
	s, _ := o.Scalar(name)
	return strings.TrimSpace(s)
}

// Str returns a required non-empty string or number field.
func (o *Object) Str(name string) string {
	s := o.Optional(name)
	if s == "" {
		o.Fail(name, "missing")
	}
	return s
}

// ID returns a required id of letters, digits, '-' and '_' (kept as text).
func (o *Object) ID(name string) string {
	s := o.Str(name)
	if s == "" {
		return ""
	}
	if len(s) > MaxIDLen || strings.TrimLeft(s, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != "" {
		o.Fail(name, "want an id of at most %d letters, digits, - or _", MaxIDLen)
		return ""
	}
	return s
}

// Digits returns a required numeric id (digits only, kept as text).
func (o *Object) Digits(name string) string {
	s := o.ID(name)
	if s != "" && strings.Trim(s, "0123456789") != "" {
		o.Fail(name, "want digits")
		return ""
	}
	return s
}

// Int returns a non-negative integer field (fen, unix seconds); optional ones default to 0.
func (o *Object) Int(name string, required bool) int64 {
	s, ok := o.Scalar(name)
	if !ok {
		if required {
			o.Fail(name, "missing")
		}
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		o.Fail(name, "want a non-negative integer")
		return 0
	}
	return n
}

// Bool returns a JSON boolean, or the strings "true"/"false" some platforms send instead.
func (o *Object) Bool(name string) bool {
	if !o.Has(name) {
		return false
	}
	switch strings.Trim(string(o.raw[name]), `"`) {
	case "true":
		return true
	case "false":
		return false
	}
	o.Fail(name, "want true or false")
	return false
}

// Unix returns an optional unix-seconds field; absent or 0 gives the zero time.
func (o *Object) Unix(name string) time.Time {
	s := o.Int(name, false)
	if s > maxUnix {
		o.Fail(name, "unix seconds out of range")
		return time.Time{}
	}
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// Object returns a required nested object; a missing one is recorded and reads as empty.
func (o *Object) Object(name string) *Object {
	if !o.Has(name) {
		o.Fail(name, "missing")
		return &Object{path: o.field(name), first: o.first}
	}
	return o.nested(o.field(name), o.raw[name])
}

// Array returns an optional array of objects; a malformed element is recorded by its index.
func (o *Object) Array(name string) []*Object {
	if !o.Has(name) {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(o.raw[name], &items); err != nil {
		o.Fail(name, "want an array")
		return nil
	}
	out := make([]*Object, 0, len(items))
	for i, it := range items {
		out = append(out, o.nested(o.field(name)+"."+strconv.Itoa(i), it))
	}
	return out
}
