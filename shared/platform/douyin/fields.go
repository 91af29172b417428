package douyin

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
)

// maxIDLen bounds ids copied into events (documents keys, scopes): Douyin ids are 19-20 digits.
const maxIDLen = 40

// object reads the fields of one JSON object and remembers the first error with the field path
// ("[0].data.p_id"), so that a 400 names exactly what was wrong.
type object struct {
	path string
	raw  map[string]json.RawMessage
	err  error
}

func decodeObject(path string, b []byte) (*object, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, platform.Malformed(path, "want a JSON object")
	}
	return &object{path: path, raw: raw}, nil
}

func (o *object) fail(name, format string, args ...any) {
	if o.err == nil {
		o.err = platform.Malformed(o.path+"."+name, format, args...)
	}
}

// scalar returns a field that may be a JSON string or a JSON number as its literal text: Douyin
// sends ids such as p_id (> 2^53) as bare numbers, which must never pass through a float64.
func (o *object) scalar(name string) (string, bool) {
	v, ok := o.raw[name]
	if !ok || string(v) == "null" {
		return "", false
	}
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			o.fail(name, "not a string")
			return "", true
		}
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		o.fail(name, "want a string or a number")
		return "", true
	}
	return n.String(), true
}

// str returns a required non-empty string or number field.
func (o *object) str(name string) string {
	s, ok := o.scalar(name)
	if !ok || strings.TrimSpace(s) == "" {
		o.fail(name, "missing")
		return ""
	}
	return s
}

// id returns a required numeric id (digits only, kept as text).
func (o *object) id(name string) string {
	s := o.str(name)
	if s == "" {
		return ""
	}
	if len(s) > maxIDLen || strings.Trim(s, "0123456789") != "" {
		o.fail(name, "want an id of at most %d digits", maxIDLen)
		return ""
	}
	return s
}

// integer returns a non-negative integer field (fen, unix seconds); optional ones default to 0.
func (o *object) integer(name string, required bool) int64 {
	s, ok := o.scalar(name)
	if !ok {
		if required {
			o.fail(name, "missing")
		}
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		o.fail(name, "want a non-negative integer")
		return 0
	}
	return n
}

// maxUnix is 9999-12-31T23:59:59Z, the last second RFC 3339 can carry.
const maxUnix = 253402300799

// unixTime returns an optional unix-seconds field; absent or 0 gives the zero time.
func (o *object) unixTime(name string) time.Time {
	s := o.integer(name, false)
	if s > maxUnix {
		o.fail(name, "unix seconds out of range")
		return time.Time{}
	}
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
