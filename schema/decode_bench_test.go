package schema_test

import (
	"testing"

	"github.com/eventflow/eventflow/schema"
)

// A realistic order.placed request (about 440 bytes), as `eventflow bench`
// and the README's examples send it.
const benchOrder = `{"event_type":"order.placed","source":"checkout-service","metadata":{"region":"eu-west-1","client":"web"},` +
	`"payload":{"order_id":"ord-20261127-0001","user_id":"user-4821","currency":"EUR","items":[` +
	`{"sku":"SKU-RED-SHIRT-M","quantity":2,"unit_price":19.99},{"sku":"SKU-BLUE-JEANS-32","quantity":1,"unit_price":59.5},` +
	`{"sku":"SKU-SOCKS-3PACK","quantity":3,"unit_price":7.25}],"shipping":{"method":"standard","country":"DE"}}}`

// BenchmarkDecodeEvent is the API's per-request decoding and envelope
// checks; BenchmarkCheckPayload the process handler's payload rules and
// enrichment. Both run once per event on the hot path.
func BenchmarkDecodeEvent(b *testing.B) {
	data := []byte(benchOrder)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schema.DecodeEvent(data, schema.DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckPayload(b *testing.B) {
	e, err := schema.DecodeEvent([]byte(benchOrder), schema.DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	typ, ok := schema.DefaultRegistry().Lookup(e.Type)
	if !ok {
		b.Fatal("order.placed is not registered")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := typ.Check(e.Payload); err != nil {
			b.Fatal(err)
		}
	}
}
