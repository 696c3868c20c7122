package schema_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/eventflow/eventflow/schema"
)

// This example adds an event type, "invoice.paid", to the built-in ones
// and checks two events of it: ingestion decodes the envelope, then the
// type's Check validates the payload and returns its enrichment.
func Example() {
	invoicePaid := schema.EventType{
		Name: "invoice.paid",
		Check: func(payload json.RawMessage) (schema.Enrichment, error) {
			var p struct {
				InvoiceID   string `json:"invoice_id"`
				AmountCents *int64 `json:"amount_cents"`
			}
			if err := json.Unmarshal(payload, &p); err != nil {
				return nil, &schema.ValidationError{Errors: []schema.FieldError{
					{Field: "payload", Message: "must be an object with invoice_id (string) and amount_cents (integer)"},
				}}
			}
			var errs []schema.FieldError
			if p.InvoiceID == "" {
				errs = append(errs, schema.FieldError{Field: "payload.invoice_id", Message: "is required"})
			}
			if p.AmountCents == nil || *p.AmountCents < 0 {
				errs = append(errs, schema.FieldError{Field: "payload.amount_cents", Message: "must be an integer ≥ 0"})
			}
			if len(errs) > 0 {
				return nil, &schema.ValidationError{Errors: errs}
			}
			cents := *p.AmountCents
			return schema.Enrichment{"amount": json.Number(fmt.Sprintf("%d.%02d", cents/100, cents%100))}, nil
		},
	}

	registry, err := schema.NewRegistry(append(schema.BuiltinTypes(), invoicePaid)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(registry.Names())

	for _, body := range []string{
		`{"event_type":"invoice.paid","source":"billing","payload":{"invoice_id":"INV-7","amount_cents":12345}}`,
		`{"event_type":"invoice.paid","source":"billing","payload":{"amount_cents":-1}}`,
	} {
		event, err := schema.DecodeEvent([]byte(body), schema.DecodeOptions{Registry: registry, Now: time.Now()})
		if err != nil {
			fmt.Println("rejected:", err)
			continue
		}
		eventType, _ := registry.Lookup(event.Type)
		enrichment, err := eventType.Check(event.Payload)
		if err != nil {
			fmt.Println("invalid:", err)
			continue
		}
		fmt.Println("enrichment:", enrichment)
	}
	// Output:
	// [invoice.paid order.placed page.view user.login user.signup]
	// enrichment: map[amount:123.45]
	// invalid: payload.invoice_id: is required; payload.amount_cents: must be an integer ≥ 0
}
