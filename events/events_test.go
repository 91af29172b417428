package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goTypes maps every event type to the Go type of its data.
var goTypes = map[string]any{
	MemberRegistered:       MemberRegisteredData{},
	OrderPaid:              OrderPaidData{},
	OrderRefunded:          OrderRefundedData{},
	InteractionRecorded:    InteractionRecordedData{},
	IdentityResolved:       IdentityResolvedData{},
	MemberMerged:           MemberMergedData{},
	MemberSplit:            MemberSplitData{},
	MemberErased:           MemberErasedData{},
	PoolChanged:            PoolChangedData{},
	PointsAwarded:          PointsAwardedData{},
	PointsReversed:         PointsReversedData{},
	PointsRedeemed:         PointsRedeemedData{},
	PointsExpired:          PointsExpiredData{},
	PointsExpiring:         PointsExpiringData{},
	RedemptionReversed:     RedemptionReversedData{},
	TierChanged:            TierChangedData{},
	CampaignTriggered:      CampaignTriggeredData{},
	CampaignRewarded:       CampaignRewardedData{},
	NotificationRequested:  NotificationRequestedData{},
	NotificationSent:       NotificationOutcomeData{},
	NotificationSuppressed: NotificationOutcomeData{},
	NotificationFailed:     NotificationOutcomeData{},
}

func TestEveryTypeHasGoTypeSchemaAndValidExample(t *testing.T) {
	require.Len(t, goTypes, len(All), "every contract type needs a Go data type")
	for _, typ := range All {
		t.Run(ShortName(typ), func(t *testing.T) {
			_, err := SchemaFile(typ)
			require.NoError(t, err, "schema file")
			ev, err := Example(typ)
			require.NoError(t, err)
			assert.Equal(t, typ, ev.Type())
			assert.Equal(t, SchemaURL(typ), ev.DataSchema())
			require.NoError(t, Validate(ev), "example must validate against its schema")
		})
	}
}

// TestGoTypesRoundTripExamples decodes each example strictly into its Go type and re-encodes it:
// a field the Go type lacks fails the strict decode, a field it renames changes the JSON.
func TestGoTypesRoundTripExamples(t *testing.T) {
	for _, typ := range All {
		t.Run(ShortName(typ), func(t *testing.T) {
			ev, err := Example(typ)
			require.NoError(t, err)
			ptr := reflect.New(reflect.TypeOf(goTypes[typ]))
			dec := json.NewDecoder(bytes.NewReader(ev.Data()))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(ptr.Interface()))
			again, err := json.Marshal(ptr.Interface())
			require.NoError(t, err)
			require.NoError(t, ValidateData(typ, again), "re-encoded Go value must validate")
			assert.JSONEq(t, string(ev.Data()), string(again), "got re-encoded, want example")
		})
	}
}

// TestGoFieldsMatchSchemaProperties compares json tags with schema properties and required lists.
func TestGoFieldsMatchSchemaProperties(t *testing.T) {
	for _, typ := range All {
		t.Run(ShortName(typ), func(t *testing.T) {
			props, required := schemaObject(t, ShortName(typ)+".json", "")
			assertFieldsMatch(t, reflect.TypeOf(goTypes[typ]), props, required)
		})
	}
	for def, goType := range map[string]any{"identity": Identity{}, "orderItem": OrderItem{}} {
		t.Run("common/"+def, func(t *testing.T) {
			props, required := schemaObject(t, "common.json", def)
			assertFieldsMatch(t, reflect.TypeOf(goType), props, required)
		})
	}
}

func assertFieldsMatch(t *testing.T, typ reflect.Type, props, required []string) {
	t.Helper()
	var fields, mandatory []string
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields = append(fields, name)
		if !strings.Contains(opts, "omitempty") {
			mandatory = append(mandatory, name)
		}
	}
	slices.Sort(fields)
	slices.Sort(mandatory)
	assert.Equal(t, props, fields, "got schema properties, want Go json fields")
	assert.Equal(t, required, mandatory, "got schema required, want Go fields without omitempty")
}

// schemaObject returns the sorted property names and required names of a schema (or one of its
// $defs), following a top-level $ref to another file.
func schemaObject(t *testing.T, file, def string) (props, required []string) {
	t.Helper()
	raw, err := schemaFiles.ReadFile("schemas/v1/" + file)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	if def != "" {
		doc = doc["$defs"].(map[string]any)[def].(map[string]any)
	}
	if ref, ok := doc["$ref"].(string); ok && doc["properties"] == nil {
		return schemaObject(t, ref, "")
	}
	for name := range doc["properties"].(map[string]any) {
		props = append(props, name)
	}
	for _, r := range doc["required"].([]any) {
		required = append(required, r.(string))
	}
	slices.Sort(props)
	slices.Sort(required)
	return props, required
}

func TestValidateNamesTheBadField(t *testing.T) {
	tests := []struct {
		name      string
		typ       string
		mutate    func(map[string]any)
		wantField string
	}{
		{"missing amount", OrderPaid, func(d map[string]any) { delete(d, "amountFen") }, "data"},
		{"amount as string", OrderPaid, func(d map[string]any) { d["amountFen"] = "129900" }, "data.amountFen"},
		{"fractional amount", OrderPaid, func(d map[string]any) { d["amountFen"] = 12.5 }, "data.amountFen"},
		{"negative amount", OrderPaid, func(d map[string]any) { d["amountFen"] = -1 }, "data.amountFen"},
		{"unknown channel", OrderPaid, func(d map[string]any) { d["channel"] = "ebay" }, "data.channel"},
		{"bad time", OrderPaid, func(d map[string]any) { d["paidAt"] = "yesterday" }, "data.paidAt"},
		{"no identities", OrderPaid, func(d map[string]any) { d["identities"] = []any{} }, "data.identities"},
		{"identity without value", OrderPaid, func(d map[string]any) {
			d["identities"] = []any{map[string]any{"type": "phone"}}
		}, "data.identities.0"},
		{"unknown field", OrderRefunded, func(d map[string]any) { d["coupon"] = "x" }, "data"},
		{"bad oneId", TierChanged, func(d map[string]any) { d["oneId"] = "nobody" }, "data.oneId"},
		{"multiplier factor not a decimal", CampaignRewarded, func(d map[string]any) {
			d["multiplier"].(map[string]any)["factor"] = "2x"
		}, "data.multiplier.factor"},
		{"multiplier without end", CampaignRewarded, func(d map[string]any) { delete(d["multiplier"].(map[string]any), "to") }, "data.multiplier"},
		{"negative bonus", CampaignRewarded, func(d map[string]any) { d["bonusPoints"] = -5 }, "data.bonusPoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Example(tt.typ)
			require.NoError(t, err)
			var data map[string]any
			require.NoError(t, json.Unmarshal(ev.Data(), &data))
			tt.mutate(data)
			raw, err := json.Marshal(data)
			require.NoError(t, err)
			ev.DataEncoded = raw
			var fe *FieldError
			require.True(t, errors.As(Validate(ev), &fe), "want a *FieldError")
			assert.Equal(t, tt.wantField, fe.Field, "got field, want field (reason %q)", fe.Reason)
			assert.NotEmpty(t, fe.Reason)
		})
	}
}

func TestValidateAttributes(t *testing.T) {
	ev, err := Example(OrderPaid)
	require.NoError(t, err)
	ev.SetType("omnimember.order.shipped")
	var fe *FieldError
	require.True(t, errors.As(Validate(ev), &fe))
	assert.Equal(t, "type", fe.Field)

	ev, err = Example(OrderPaid)
	require.NoError(t, err)
	ev.SetID("")
	require.True(t, errors.As(Validate(ev), &fe))
	assert.Equal(t, "id", fe.Field)
}

func TestNewBuildsValidEvents(t *testing.T) {
	at := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	data := TierChangedData{OneID: "om_abcdefghij0123456789", From: "member", To: "gold", Direction: "upgrade",
		NetSpendFen: 300000, EvaluatedAt: at, SourceID: "src-1"}
	ev, err := New(TierChanged, DerivedID("tier-evaluate", "src-1", 0), Source("tier-evaluate"), at, data)
	require.NoError(t, err)
	require.NoError(t, Validate(ev))
	got, err := Decode[TierChangedData](ev)
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

func TestDerivedIDIsDeterministicAndDistinct(t *testing.T) {
	a := DerivedID("match", "ev-1", 0)
	assert.Equal(t, a, DerivedID("match", "ev-1", 0), "same inputs, same id")
	for _, other := range []string{DerivedID("match", "ev-1", 1), DerivedID("match", "ev-2", 0), DerivedID("notify", "ev-1", 0)} {
		assert.NotEqual(t, a, other)
	}
}

// TestFieldErrorKindNamesTheFailureNotTheValue: the kind a log may print says what failed
// without quoting the value (a phone in an identity, say), which the reason may.
func TestFieldErrorKindNamesTheFailureNotTheValue(t *testing.T) {
	ev, err := Example(OrderPaid)
	require.NoError(t, err)
	var data map[string]any
	require.NoError(t, json.Unmarshal(ev.Data(), &data))
	data["paidAt"] = "13812345678"
	raw, err := json.Marshal(data)
	require.NoError(t, err)
	ev.DataEncoded = raw
	var fe *FieldError
	require.True(t, errors.As(Validate(ev), &fe), "want a *FieldError")
	assert.Equal(t, "data.paidAt", fe.Field)
	assert.Equal(t, "format", fe.Kind, "got kind, want the schema keyword")
	assert.NotContains(t, fe.Kind, "13812345678")
}

func TestInternalEvents(t *testing.T) {
	tests := []struct {
		typ, source string
		want        bool
	}{
		{OrderPaid, "jd/jd-shop-9", false},
		{InteractionRecorded, "app/ios", false},
		{OrderPaid, Source("webhooks/pos"), true},
		{IdentityResolved, "jd/jd-shop-9", true},
		{PointsAwarded, Source("points-award"), true},
		{"omnimember.order.shipped", "jd/jd-shop-9", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Internal(tt.typ, tt.source), "Internal(%s, %s): got, want", tt.typ, tt.source)
	}
}

// TestRawPhoneHashesOnlyOnInputEvents: a raw SHA-256 or MD5 of a phone (reversed in seconds) and a
// plaintext phone are accepted on the events ingest takes, never on identity.resolved, at its top
// level or in the source data it carries.
func TestRawPhoneHashesOnlyOnInputEvents(t *testing.T) {
	const (
		rawSHA = "38aed9048140b0e437ea81461d9ea4524169f6795004da120bcf7d41894e4d15"
		rawMD5 = "4c0115d39ddea1eba5a7cdf8edfc18a9"
		keyed  = "k1:9f2c61d0a4e83b57c2d19e0f6a7b48c35d21e0f9"
	)
	ids := func(typ, value string) []any { return []any{map[string]any{"type": typ, "value": value}} }
	tests := []struct {
		name   string
		typ    string
		mutate func(map[string]any)
		valid  bool
	}{
		{"order.paid takes a raw sha256", OrderPaid, func(d map[string]any) { d["identities"] = ids("phone_sha256", rawSHA) }, true},
		{"order.paid takes a raw md5", OrderPaid, func(d map[string]any) { d["identities"] = ids("phone_md5", rawMD5) }, true},
		{"order.paid takes a plaintext phone", OrderPaid, func(d map[string]any) { d["identities"] = ids("phone", "13812345678") }, true},
		{"identity.resolved takes a keyed sha256", IdentityResolved, func(d map[string]any) { d["identities"] = ids("phone_sha256", keyed) }, true},
		{"identity.resolved takes a keyed md5 in its order", IdentityResolved, func(d map[string]any) {
			d["order"].(map[string]any)["identities"] = ids("phone_md5", keyed)
		}, true},
		{"identity.resolved refuses a raw sha256", IdentityResolved, func(d map[string]any) { d["identities"] = ids("phone_sha256", rawSHA) }, false},
		{"identity.resolved refuses a raw md5", IdentityResolved, func(d map[string]any) { d["identities"] = ids("phone_md5", rawMD5) }, false},
		{"identity.resolved refuses a plaintext phone", IdentityResolved, func(d map[string]any) { d["identities"] = ids("phone", "13812345678") }, false},
		{"identity.resolved refuses a raw sha256 in its order", IdentityResolved, func(d map[string]any) {
			d["order"].(map[string]any)["identities"] = ids("phone_sha256", rawSHA)
		}, false},
		{"identity.resolved refuses a plaintext phone in its order", IdentityResolved, func(d map[string]any) {
			d["order"].(map[string]any)["identities"] = ids("phone", "13812345678")
		}, false},
		{"identity.resolved refuses an unkeyed identity key", IdentityResolved, func(d map[string]any) { d["identityKeys"] = []any{rawSHA[:40]} }, false},
		{"member.split refuses an unkeyed identity key", MemberSplit, func(d map[string]any) { d["identityKeys"] = []any{rawSHA[:40]} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Example(tt.typ)
			require.NoError(t, err)
			var data map[string]any
			require.NoError(t, json.Unmarshal(ev.Data(), &data))
			tt.mutate(data)
			raw, err := json.Marshal(data)
			require.NoError(t, err)
			err = ValidateData(tt.typ, raw)
			if tt.valid {
				require.NoError(t, err)
				return
			}
			require.Error(t, err, "got valid, want refused")
		})
	}
}
