package events

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed schemas/v1/*.json
var schemaFiles embed.FS

// FieldError says which field of an event is wrong and why. Field is a dotted path such as
// `data.identities.0.type`, or a CloudEvents attribute name such as `type`.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
	// Kind is the kind of failure without the value (the JSON Schema keyword, such as `pattern`
	// or `maxLength`), for logs: Reason may quote the value, a phone say.
	Kind string `json:"-"`
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
	printer     = message.NewPrinter(language.English)
)

// SchemaFile is the checked-in JSON Schema of the given event type's data.
func SchemaFile(eventType string) ([]byte, error) {
	return schemaFiles.ReadFile("schemas/v1/" + ShortName(eventType) + ".json")
}

func schemas() (map[string]*jsonschema.Schema, error) {
	compileOnce.Do(func() { compiled, compileErr = compileSchemas() })
	return compiled, compileErr
}

// Warm compiles the schemas now instead of at the first Validate. Functions call it in the
// background as they start, so that compiling (tens of milliseconds) overlaps connecting to NATS
// rather than delaying the first event after a cold start.
func Warm() error {
	_, err := schemas()
	return err
}

func compileSchemas() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	entries, err := schemaFiles.ReadDir("schemas/v1")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		raw, err := schemaFiles.ReadFile("schemas/v1/" + e.Name())
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", e.Name(), err)
		}
		if err := c.AddResource(defaultSchemaURLPattern+e.Name(), doc); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", e.Name(), err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(All))
	for _, t := range All {
		s, err := c.Compile(SchemaURL(t))
		if err != nil {
			return nil, fmt.Errorf("compile schema of %s: %w", t, err)
		}
		out[t] = s
	}
	return out, nil
}

// Validate checks an event's CloudEvents attributes and its data against the schema of its type.
// A failure is a *FieldError naming the first wrong field.
func Validate(ev cloudevents.Event) error {
	if err := ev.Validate(); err != nil {
		return &FieldError{Field: attributeOf(err), Reason: err.Error()}
	}
	if !Known(ev.Type()) {
		return &FieldError{Field: "type", Reason: fmt.Sprintf("unknown event type %q", ev.Type())}
	}
	if ct := ev.DataContentType(); ct != "" && !strings.HasPrefix(ct, dataContentTypeJSON) {
		return &FieldError{Field: "datacontenttype", Reason: fmt.Sprintf("want %s, got %q", dataContentTypeJSON, ct)}
	}
	return ValidateData(ev.Type(), ev.Data())
}

// ValidateData checks raw JSON data against the schema of eventType.
func ValidateData(eventType string, data []byte) error {
	all, err := schemas()
	if err != nil {
		return fmt.Errorf("load event schemas: %w", err)
	}
	sch, ok := all[eventType]
	if !ok {
		return &FieldError{Field: "type", Reason: fmt.Sprintf("unknown event type %q", eventType)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &FieldError{Field: "data", Reason: "missing"}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &FieldError{Field: "data", Reason: "not valid JSON: " + err.Error()}
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fieldErrorOf(ve)
		}
		return &FieldError{Field: "data", Reason: err.Error()}
	}
	return nil
}

// fieldErrorOf picks the deepest cause, which names the most specific field.
func fieldErrorOf(ve *jsonschema.ValidationError) *FieldError {
	leaf, depth := ve, -1
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 && len(e.InstanceLocation) > depth {
			leaf, depth = e, len(e.InstanceLocation)
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	field := strings.Join(append([]string{"data"}, leaf.InstanceLocation...), ".")
	return &FieldError{Field: field, Reason: leaf.ErrorKind.LocalizedString(printer), Kind: strings.Join(leaf.ErrorKind.KeywordPath(), "/")}
}

// attributeOf names the CloudEvents attribute a validation error of the sdk is about.
func attributeOf(err error) string {
	msg := err.Error()
	for _, attr := range []string{"specversion", "id", "source", "type", "time", "datacontenttype", "dataschema", "subject"} {
		if strings.Contains(msg, attr+":") {
			return attr
		}
	}
	return "event"
}
