package schema_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/eventflow/eventflow/schema"
)

func TestOrderPlaced_Valid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    schema.Enrichment
	}{
		{
			name: "two items",
			payload: `{"order_id":"A-1001","user_id":"u-1","currency":"EUR","items":[
				{"sku":"book","quantity":2,"unit_price":19.99},
				{"sku":"pen","quantity":1,"unit_price":5.00}]}`,
			want: schema.Enrichment{"item_count": int64(3), "total_amount": json.Number("44.98")},
		},
		{
			name:    "sums a float would get wrong",
			payload: `{"order_id":"A","user_id":"u","currency":"USD","items":[{"sku":"a","quantity":3,"unit_price":0.1},{"sku":"b","quantity":1,"unit_price":0.2}]}`,
			want:    schema.Enrichment{"item_count": int64(4), "total_amount": json.Number("0.50")},
		},
		{
			name:    "rounds half away from zero to 2 decimals",
			payload: `{"order_id":"A","user_id":"u","currency":"USD","items":[{"sku":"a","quantity":1,"unit_price":1.005}]}`,
			want:    schema.Enrichment{"item_count": int64(1), "total_amount": json.Number("1.01")},
		},
		{
			name:    "free item, integer written 2.0 and 1e1, extra fields",
			payload: `{"order_id":"A","user_id":"u","currency":"JPY","coupon":"X","items":[{"sku":"a","quantity":2.0,"unit_price":0},{"sku":"b","quantity":1e1,"unit_price":1E2,"color":"red"}]}`,
			want:    schema.Enrichment{"item_count": int64(12), "total_amount": json.Number("1000.00")},
		},
		{
			name:    "large amounts stay exact",
			payload: `{"order_id":"A","user_id":"u","currency":"EUR","items":[{"sku":"a","quantity":3,"unit_price":12345678901234567.89}]}`,
			want:    schema.Enrichment{"item_count": int64(3), "total_amount": json.Number("37037036703703703.67")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := checkBuiltin(t, "order.placed", tt.payload)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("enrichment = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestOrderPlaced_EnrichmentJSON(t *testing.T) {
	t.Parallel()
	got, err := checkBuiltin(t, "order.placed", `{"order_id":"A","user_id":"u","currency":"EUR","items":[{"sku":"a","quantity":2,"unit_price":61.7}]}`)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if want := `{"item_count":2,"total_amount":123.40}`; string(b) != want {
		t.Errorf("enrichment JSON = %s, want %s", b, want)
	}
}

func TestOrderPlaced_Invalid(t *testing.T) {
	t.Parallel()
	const (
		badCurrency = "must be a currency code of 3 upper-case letters such as EUR"
		badQuantity = "must be an integer ≥ 1"
		badPrice    = "must be a number ≥ 0"
	)
	order := func(currency, items string) string {
		return `{"order_id":"A","user_id":"u","currency":"` + currency + `","items":` + items + `}`
	}
	tests := []struct {
		name    string
		payload string
		want    []schema.FieldError
	}{
		{
			name:    "everything missing",
			payload: `{}`,
			want: []schema.FieldError{
				{Field: "payload.order_id", Message: "is required"},
				{Field: "payload.user_id", Message: "is required"},
				{Field: "payload.currency", Message: "is required"},
				{Field: "payload.items", Message: "is required"},
			},
		},
		{"currency lower case", order("eur", `[{"sku":"a","quantity":1,"unit_price":1}]`), []schema.FieldError{{Field: "payload.currency", Message: badCurrency}}},
		{"currency too long", order("EURO", `[{"sku":"a","quantity":1,"unit_price":1}]`), []schema.FieldError{{Field: "payload.currency", Message: badCurrency}}},
		{"currency not ASCII", order("ÉUR", `[{"sku":"a","quantity":1,"unit_price":1}]`), []schema.FieldError{{Field: "payload.currency", Message: badCurrency}}},
		{"items empty", order("EUR", `[]`), []schema.FieldError{{Field: "payload.items", Message: "must not be empty"}}},
		{"items an object", order("EUR", `{"sku":"a"}`), []schema.FieldError{{Field: "payload.items", Message: "must be an array, got object"}}},
		{
			name:    "items that are not objects",
			payload: order("EUR", `[{"sku":"a","quantity":1,"unit_price":1},"b",null]`),
			want: []schema.FieldError{
				{Field: "payload.items[1]", Message: "must be a JSON object, got string"},
				{Field: "payload.items[2]", Message: "must be a JSON object, got null"},
			},
		},
		{
			name:    "every item field missing",
			payload: order("EUR", `[{}]`),
			want: []schema.FieldError{
				{Field: "payload.items[0].sku", Message: "is required"},
				{Field: "payload.items[0].quantity", Message: "is required"},
				{Field: "payload.items[0].unit_price", Message: "is required"},
			},
		},
		{
			name: "bad quantities and prices, each at its path",
			payload: order("EUR", `[
				{"sku":"a","quantity":1.5,"unit_price":-0.01},
				{"sku":"b","quantity":"2","unit_price":"1.00"},
				{"sku":"","quantity":0,"unit_price":true},
				{"sku":"d","quantity":-3,"unit_price":1},
				{"sku":"e","quantity":1e4000,"unit_price":1e-5000},
				{"sku":"f","quantity":9223372036854775808,"unit_price":1}]`),
			want: []schema.FieldError{
				{Field: "payload.items[0].quantity", Message: badQuantity},
				{Field: "payload.items[0].unit_price", Message: badPrice},
				{Field: "payload.items[1].quantity", Message: badQuantity + ", got string"},
				{Field: "payload.items[1].unit_price", Message: badPrice + ", got string"},
				{Field: "payload.items[2].sku", Message: "must not be empty"},
				{Field: "payload.items[2].quantity", Message: badQuantity},
				{Field: "payload.items[2].unit_price", Message: badPrice + ", got boolean"},
				{Field: "payload.items[3].quantity", Message: badQuantity},
				{Field: "payload.items[4].quantity", Message: "is out of range"},
				{Field: "payload.items[4].unit_price", Message: "is out of range"},
				{Field: "payload.items[5].quantity", Message: "is too large"},
			},
		},
		{
			name:    "total quantity overflows",
			payload: order("EUR", `[{"sku":"a","quantity":9223372036854775807,"unit_price":1},{"sku":"b","quantity":1,"unit_price":1}]`),
			want:    []schema.FieldError{{Field: "payload.items", Message: "total quantity is too large"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enrichment, err := checkBuiltin(t, "order.placed", tt.payload)
			if enrichment != nil {
				t.Errorf("enrichment = %v, want none", enrichment)
			}
			if got := fieldErrors(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("Errors = %v\nwant     %v", got, tt.want)
			}
		})
	}
}
