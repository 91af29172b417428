package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Source names the producer of an event, e.g. `omnimember/match` or `tmall/shop-1`.
func Source(producer string) string { return SourcePrefix + producer }

// New builds a CloudEvent of eventType with JSON data, its dataschema and the given id and source.
func New(eventType, id, source string, at time.Time, data any) (cloudevents.Event, error) {
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetType(eventType)
	ev.SetSource(source)
	ev.SetTime(at.UTC())
	ev.SetDataSchema(SchemaURL(eventType))
	raw, err := json.Marshal(data)
	if err != nil {
		return ev, fmt.Errorf("encode %s data: %w", eventType, err)
	}
	// DataEncoded avoids a second encode by SetData; the content type must be set alongside.
	ev.SetDataContentType(dataContentTypeJSON)
	ev.DataEncoded = raw
	return ev, nil
}

// DerivedID is the deterministic id of the index-th event that producer emits for the source event,
// so a retried handler emits the same ids and every dedupe downstream recognises them.
func DerivedID(producer, sourceID string, index int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", producer, sourceID, index))
	return hex.EncodeToString(sum[:16])
}

// Decode unmarshals an event's JSON data into a value of type T.
func Decode[T any](ev cloudevents.Event) (T, error) {
	var v T
	if err := json.Unmarshal(ev.Data(), &v); err != nil {
		return v, fmt.Errorf("decode %s data of event %s: %w", ev.Type(), ev.ID(), err)
	}
	return v, nil
}

// StampReceived sets ReceivedAtExtension: ingest's word for when it took a live event in.
func StampReceived(ev *cloudevents.Event, at time.Time) {
	ev.SetExtension(ReceivedAtExtension, at.UTC().Format(time.RFC3339Nano))
}

// ReceivedAt reads ReceivedAtExtension; false when the event carries none (history) or one that
// does not parse.
func ReceivedAt(ev cloudevents.Event) (time.Time, bool) {
	v, ok := ev.Extensions()[ReceivedAtExtension]
	if !ok {
		return time.Time{}, false
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}
