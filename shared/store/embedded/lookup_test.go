package embedded

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// decodedIndexValue is the reference lookup: decode the whole document, read the path.
func decodedIndexValue(raw []byte, f string) ([]byte, bool, error) {
	doc, err := decodeJSON(raw)
	if err != nil {
		return nil, false, err
	}
	v, ok := field(doc, strings.Split(f, "."))
	if !ok {
		return nil, false, nil
	}
	enc, ok := encodeValue(v)
	return enc, ok, nil
}

func TestIndexValueReadsWhatDecodingReads(t *testing.T) {
	tests := []struct {
		name, doc, field string
		want             any // nil: no index entry
	}{
		{"string", `{"a":"x","b":1}`, "b", json.Number("1")},
		{"nested", `{"a":{"b":{"c":true}}}`, "a.b.c", true},
		{"last duplicate wins", `{"a":1,"a":2}`, "a", json.Number("2")},
		{"later object without the path", `{"a":{"b":1},"a":{"c":2}}`, "a.b", nil},
		{"escaped string", `{"a":"line\nnext \u00e9"}`, "a", "line\nnext é"},
		{"braces in strings", `{"x":"}{\"","a":"found"}`, "a", "found"},
		{"arrays skipped", `{"x":[1,[2,{"a":3}],"]"],"a":-1.5e3}`, "a", json.Number("-1.5e3")},
		{"escaped key", `{"\u0061":"escaped"}`, "a", "escaped"},
		{"not an object below", `{"a":"text"}`, "a.b", nil},
		{"null", `{"a":null}`, "a", nil},
		{"object not indexed", `{"a":{}}`, "a", nil},
		{"absent", `{}`, "a", nil},
		{"spaced", " {\n \"a\" : false ,\t\"b\":0 } ", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := indexValue([]byte(tt.doc), tt.field)
			require.NoError(t, err)
			if tt.want == nil {
				require.False(t, ok, "got an index value %q, want none", got)
				return
			}
			want, _ := encodeValue(tt.want)
			require.True(t, ok, "got no index value, want %q", want)
			require.Equal(t, want, got)
		})
	}
}

// FuzzIndexValue: on any valid JSON the walk gives what decoding the whole document gives; on
// anything else it must not panic or loop.
func FuzzIndexValue(f *testing.F) {
	for _, doc := range []string{`{"a":1}`, `{"a":{"b":"x"},"a":{"b":"y"}}`, `{"\u0061":"\ud83d\ude00"}`,
		`{"a":"\xff"}`, `{"a":[{"b":"}"}]}`, `[{"a":1}]`, `{"a":1`, `{"a":"\"}`, `{"a" 1}`} {
		f.Add([]byte(doc), "a")
		f.Add([]byte(doc), "a.b")
	}
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		got, gotOK, gotErr := indexValue(doc, path)
		if !json.Valid(doc) {
			return
		}
		want, wantOK, wantErr := decodedIndexValue(doc, path)
		require.Equal(t, wantErr, gotErr)
		require.Equal(t, wantOK, gotOK, "doc %q path %q", doc, path)
		require.Equal(t, want, got, "doc %q path %q", doc, path)
	})
}
