package jsonfield_test

import (
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform/jsonfield"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFirstErrorNamesTheNestedField(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		read      func(o *jsonfield.Object)
		wantField string
	}{
		{"nested missing", `{"a":{"b":{}}}`, func(o *jsonfield.Object) { o.Object("a").Object("b").Str("c") }, "x.a.b.c"},
		{"nested not an object", `{"a":[1]}`, func(o *jsonfield.Object) { o.Object("a").Str("c") }, "x.a"},
		{"array element", `{"a":[{"n":1},{"n":-1}]}`, func(o *jsonfield.Object) {
			for _, e := range o.Array("a") {
				e.Int("n", true)
			}
		}, "x.a.1.n"},
		{"first error wins", `{"a":"x"}`, func(o *jsonfield.Object) { o.Digits("a"); o.Str("b") }, "x.a"},
		{"bool", `{"t":"yes"}`, func(o *jsonfield.Object) { o.Bool("t") }, "x.t"},
		{"unix out of range", `{"t":99999999999999}`, func(o *jsonfield.Object) { o.Unix("t") }, "x.t"},
		{"id with a space", `{"t":"a b"}`, func(o *jsonfield.Object) { o.ID("t") }, "x.t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := jsonfield.Decode("x", []byte(tt.body))
			require.NoError(t, err)
			tt.read(o)
			var fe *events.FieldError
			require.ErrorAs(t, o.Err(), &fe)
			assert.Equal(t, tt.wantField, fe.Field)
		})
	}
}

func TestValues(t *testing.T) {
	o, err := jsonfield.Decode("", []byte(`{"big":4781320682406083640,"s":"12","b":true,"bs":"false","u":1630022564}`))
	require.NoError(t, err)
	got := []any{o.Digits("big"), o.Int("s", true), o.Bool("b"), o.Bool("bs"), o.Unix("u").Unix(), o.Optional("none"), o.Int("none", false)}
	want := []any{"4781320682406083640", int64(12), true, false, int64(1630022564), "", int64(0)}
	assert.Equal(t, want, got)
	assert.NoError(t, o.Err())
}
