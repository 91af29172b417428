package events

import (
	"embed"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

//go:embed examples/*.json
var exampleFiles embed.FS

// ExampleJSON is the checked-in example of eventType as a structured-mode CloudEvent.
func ExampleJSON(eventType string) ([]byte, error) {
	return exampleFiles.ReadFile("examples/" + ShortName(eventType) + ".json")
}

// Example decodes the checked-in example of eventType.
func Example(eventType string) (cloudevents.Event, error) {
	ev := cloudevents.NewEvent()
	raw, err := ExampleJSON(eventType)
	if err != nil {
		return ev, fmt.Errorf("read example of %s: %w", eventType, err)
	}
	if err := ev.UnmarshalJSON(raw); err != nil {
		return ev, fmt.Errorf("decode example of %s: %w", eventType, err)
	}
	return ev, nil
}
