package schema_test

import (
	"fmt"
	"strings"
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

// benchBatch is a realistic batch body of 100 order.placed events, each
// with an event_id, a timestamp and metadata, as `eventflow bench` sends
// with BATCH=100.
func benchBatch() []byte {
	events := make([]string, 100)
	for i := range events {
		events[i] = fmt.Sprintf(`{"event_id":"0b6f3c1e-3f2a-4c1e-9a51-%012d","event_type":"order.placed",`+
			`"source":"checkout-service","timestamp":"2026-11-27T10:00:%02dZ",`+
			`"metadata":{"region":"eu-west-1","client":"web","session":"s-%d"},`+
			`"payload":{"order_id":"ord-20261127-%04d","user_id":"user-%d","currency":"EUR","items":[`+
			`{"sku":"SKU-RED-SHIRT-M","quantity":2,"unit_price":19.99},{"sku":"SKU-BLUE-JEANS-32","quantity":1,"unit_price":59.5}],`+
			`"shipping":{"method":"standard","country":"DE"}}}`, i+1, i%60, i, i, 4800+i)
	}
	return []byte(`{"events":[` + strings.Join(events, ",") + `]}`)
}

// BenchmarkDecodeBatch is the API's decoding of a batch request: split
// alone, and split then each item decoded as postBatch does.
func BenchmarkDecodeBatch(b *testing.B) {
	data := benchBatch()
	b.Run("split", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := schema.DecodeBatch(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			items, err := schema.DecodeBatch(data)
			if err != nil {
				b.Fatal(err)
			}
			for _, item := range items {
				if _, err := schema.DecodeEvent(item, schema.DecodeOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
