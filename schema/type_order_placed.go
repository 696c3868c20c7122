package schema

import (
	"encoding/json"
	"math"
	"math/big"
)

// orderPlaced is "order.placed": an order with one or more items. The
// enrichment holds item_count, the sum of the quantities (an int64), and
// total_amount, the sum of quantity × unit_price computed exactly and
// rounded half away from zero to two decimals, as a json.Number such as
// "44.98" so that no float rounding creeps in.
func orderPlaced() EventType {
	return EventType{
		Name: "order.placed",
		Check: checkPayload(func(p object) Enrichment {
			p.requiredString("order_id")
			p.requiredString("user_id")
			p.requiredString("currency", currencyCode)
			var count int64
			total := new(big.Rat)
			for _, item := range p.requiredObjects("items") {
				item.requiredString("sku")
				quantity, okQuantity := item.requiredInteger("quantity", 1)
				price, okPrice := item.requiredDecimal("unit_price", 0)
				if !okQuantity || !okPrice {
					continue
				}
				if count > math.MaxInt64-quantity {
					p.fail("items", "total quantity is too large")
					continue
				}
				count += quantity
				total.Add(total, new(big.Rat).Mul(new(big.Rat).SetInt64(quantity), price))
			}
			if p.failed() {
				return nil
			}
			return Enrichment{
				"item_count":   count,
				"total_amount": json.Number(total.FloatString(2)),
			}
		}),
	}
}

// currencyCode accepts three upper-case ASCII letters, as in ISO 4217.
func currencyCode(s string) string {
	ok := len(s) == 3
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= 'A' && s[i] <= 'Z'
	}
	if !ok {
		return "must be a currency code of 3 upper-case letters such as EUR"
	}
	return ""
}
