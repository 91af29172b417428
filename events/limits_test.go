package events

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchemaBoundsMatchGo reads the bounds out of common.json and compares them with the Go
// constants every stage uses: one definition, checked, not two copies that drift.
func TestSchemaBoundsMatchGo(t *testing.T) {
	raw, err := schemaFiles.ReadFile("schemas/v1/common.json")
	require.NoError(t, err)
	var doc struct {
		Defs map[string]map[string]any `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	item := doc.Defs["orderItem"]["properties"].(map[string]any)
	attrs := doc.Defs["attributes"]
	for _, c := range []struct {
		name string
		got  any
		want int64
	}{
		{"fen.maximum", doc.Defs["fen"]["maximum"], MaxFen},
		{"fen.minimum", doc.Defs["fen"]["minimum"], 0},
		{"points.maximum", doc.Defs["points"]["maximum"], MaxPoints},
		{"total.maximum", doc.Defs["total"]["maximum"], MaxTotal},
		{"balance.maximum", doc.Defs["balance"]["maximum"], MaxTotal},
		{"balance.minimum", doc.Defs["balance"]["minimum"], -MaxTotal},
		{"orderItem.quantity.maximum", item["quantity"].(map[string]any)["maximum"], MaxQuantity},
		{"orderItem.name.maxLength", item["name"].(map[string]any)["maxLength"], MaxString},
		{"items.maxItems", doc.Defs["items"]["maxItems"], MaxItems},
		{"identities.maxItems", doc.Defs["identities"]["maxItems"], MaxIdentities},
		{"normalisedIdentities.maxItems", doc.Defs["normalisedIdentities"]["maxItems"], MaxIdentities},
		{"nonEmpty.maxLength", doc.Defs["nonEmpty"]["maxLength"], MaxString},
		{"attributes.maxProperties", attrs["maxProperties"], MaxAttributes},
		{"attributes.propertyNames.maxLength", attrs["propertyNames"].(map[string]any)["maxLength"], MaxAttributeKey},
		{"attributes.additionalProperties.maxLength", attrs["additionalProperties"].(map[string]any)["maxLength"], MaxAttributeValue},
	} {
		require.NotNil(t, c.got, "%s missing from common.json", c.name)
		assert.Equal(t, float64(c.want), c.got, "%s: got schema %v, want Go %d", c.name, c.got, c.want)
	}
}

// TestSchemaRefusesWhatGoRefuses: one past each bound fails the schema, the bound itself passes.
func TestSchemaRefusesWhatGoRefuses(t *testing.T) {
	paid := func(amount int64, quantity int) []byte {
		return fmt.Appendf(nil, `{"orderId":"o","channel":"jd","shopId":"s","amountFen":%d,"paidAt":"2026-11-20T10:00:00+08:00",
			"identities":[{"type":"jd_pin","value":"p"}],"items":[{"sku":"a","quantity":%d,"amountFen":1}]}`, amount, quantity)
	}
	awarded := func(points, balance int64) []byte {
		return fmt.Appendf(nil, `{"oneId":"om_0123456789","orderId":"o","channel":"jd","shopId":"s","points":%d,"balance":%d,
			"orderNetAmountFen":1,"paidAt":"2026-11-20T10:00:00+08:00","sourceId":"x"}`, points, balance)
	}
	cases := []struct {
		name, typ, field string
		data             []byte
	}{
		{"amount at the bound", OrderPaid, "", paid(MaxFen, 1)},
		{"amount over", OrderPaid, "data.amountFen", paid(MaxFen+1, 1)},
		{"amount of int64's max", OrderPaid, "data.amountFen", paid(9223372036854775807, 1)},
		{"quantity over", OrderPaid, "data.items.0.quantity", paid(1, MaxQuantity+1)},
		{"points at the bound", PointsAwarded, "", awarded(MaxPoints, MaxTotal)},
		{"points over", PointsAwarded, "data.points", awarded(MaxPoints+1, 0)},
		{"negative points", PointsAwarded, "data.points", awarded(-1, 0)},
		{"balance over", PointsAwarded, "data.balance", awarded(1, MaxTotal+1)},
		{"balance under", PointsAwarded, "data.balance", awarded(1, -MaxTotal-1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateData(c.typ, c.data)
			if c.field == "" {
				require.NoError(t, err)
				return
			}
			fe, ok := err.(*FieldError)
			require.True(t, ok, "got %v, want a field error", err)
			assert.Equal(t, c.field, fe.Field)
		})
	}
}
