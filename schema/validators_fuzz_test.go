package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Exported for the fuzzers of package schema_test.
var (
	ExportJSONBProblem = jsonbProblem
	ExportRepeatedKey  = repeatedKey
)

// FuzzCheckPayload runs every registered event type's Check on any payload
// and checks that:
//
//   - it never panics, leaves the payload as it was, and is deterministic;
//   - a refusal is a *ValidationError, without enrichment, whose every
//     field error names a field under "payload" and says what is wrong;
//   - an acceptance comes with an enrichment that json.Marshal takes, with
//     no NaN or infinity, no invalid UTF-8 (which json.Marshal would
//     silently replace) and, when the payload is one ingestion accepts, no
//     NUL and nothing else Postgres jsonb refuses;
//   - the verdict depends on the payload's JSON value only: the payload
//     compacted, indented, with its keys sorted or with an unknown field
//     added gets the same verdict and enrichment;
//   - strict ingestion (DecodeEvent with Strict) accepts an envelope with
//     this payload exactly when its plain checks and Check pass, so that
//     nothing accepted then turns into a dead letter in the worker;
//   - each type's enrichment means what the SPEC says (email_domain is the
//     domain of email_normalized, item_count the sum of the quantities,
//     total_amount the exact total rounded to cents, ...).
func FuzzCheckPayload(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`{"user_id":"u-1","email":" Ada@Example.COM ","plan":"pro"}`,
		`{"user_id":"u-1","ip":"::ffff:203.0.113.7"}`,
		`{"url":"https://Example.com:8443/caf%C3%A9?q=1#f","referrer":"","user_id":null}`,
		`{"order_id":"A","user_id":"u","currency":"EUR","items":[{"sku":"a","quantity":2,"unit_price":19.99},{"sku":"b","quantity":1e1,"unit_price":0.005}]}`,
		`{"order_id":"A","user_id":"u","currency":"EUR","items":[{"sku":"a","quantity":9223372036854775807,"unit_price":1},{"sku":"b","quantity":1,"unit_price":1}]}`,
	} {
		f.Add([]byte(seed))
	}
	registry := DefaultRegistry()
	f.Fuzz(func(t *testing.T, payload []byte) {
		original := bytes.Clone(payload)
		ingestable := ingestablePayload(payload)
		if utf8.Valid(payload) && json.Valid(payload) { // as DecodeEvent calls it
			path, dup := repeatedKey(payload, "payload")
			wantPath, wantDup := repeatedKeyByTokens(payload, "payload")
			if path != wantPath || dup != wantDup {
				t.Errorf("repeatedKey = %q, %v; encoding/json's tokens say %q, %v", path, dup, wantPath, wantDup)
			}
		}
		for _, name := range registry.Names() {
			typ, _ := registry.Lookup(name)
			enrichment, err := typ.Check(payload)
			if !bytes.Equal(payload, original) {
				t.Fatalf("%s: Check modified the payload", name)
			}
			again, errAgain := typ.Check(payload)
			if !reflect.DeepEqual(again, enrichment) || !reflect.DeepEqual(errAgain, err) {
				t.Errorf("%s: not deterministic: %#v, %v then %#v, %v", name, enrichment, err, again, errAgain)
			}
			if err != nil {
				checkRefusal(t, name, enrichment, err)
			} else {
				checkEnrichment(t, name, enrichment, ingestable)
				if meaning := checkMeaning[name]; meaning != nil {
					meaning(t, payload, enrichment)
				}
			}
			for _, variant := range sameValue(payload) {
				got, errGot := typ.Check(variant)
				if !reflect.DeepEqual(got, enrichment) || !reflect.DeepEqual(errGot, err) {
					t.Errorf("%s: %s gets %#v, %v; the payload as sent gets %#v, %v", name, variant, got, errGot, enrichment, err)
				}
			}
			checkStrictIngest(t, name, payload, err)
		}
	})
}

// ingestablePayload reports whether DecodeEvent takes payload as an
// event's payload: valid UTF-8, a JSON object, storable as jsonb, no key
// repeated.
func ingestablePayload(payload []byte) bool {
	if !utf8.Valid(payload) || !json.Valid(payload) || jsonKind(payload) != "object" {
		return false
	}
	_, dup := repeatedKey(payload, "payload")
	return jsonbProblem(payload) == "" && !dup
}

func checkRefusal(t *testing.T, name string, enrichment Enrichment, err error) {
	t.Helper()
	if enrichment != nil {
		t.Errorf("%s: refused (%v) with an enrichment %#v", name, err, enrichment)
	}
	ve, ok := errors.AsType[*ValidationError](err)
	if !ok || len(ve.Errors) == 0 {
		t.Fatalf("%s: error %v (%T), want a *ValidationError with fields", name, err, err)
	}
	for _, fe := range ve.Errors {
		if fe.Field != "payload" && !strings.HasPrefix(fe.Field, "payload.") || fe.Message == "" {
			t.Errorf("%s: field error %+v", name, fe)
		}
	}
}

func checkEnrichment(t *testing.T, name string, enrichment Enrichment, ingestable bool) {
	t.Helper()
	if enrichment == nil {
		t.Fatalf("%s: accepted without an enrichment", name)
	}
	for key, v := range enrichment {
		switch v := v.(type) {
		case string:
			if !utf8.ValidString(v) {
				t.Errorf("%s: enrichment %s = %q is not valid UTF-8", name, key, v)
			}
		case json.Number:
			if !json.Valid([]byte(v)) || jsonKind([]byte(v)) != "number" {
				t.Errorf("%s: enrichment %s = %q is not a JSON number", name, key, v)
			}
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("%s: enrichment %s = %v", name, key, v)
			}
		case int, int64, bool:
		default:
			t.Errorf("%s: enrichment %s = %#v, of type %T", name, key, v, v)
		}
	}
	encoded, err := json.Marshal(enrichment)
	if err != nil {
		t.Fatalf("%s: json.Marshal(%#v): %v", name, enrichment, err)
	}
	if problem := jsonbProblem(encoded); ingestable && problem != "" {
		t.Errorf("%s: an ingestable payload's enrichment %s cannot be stored as jsonb: %s", name, encoded, problem)
	}
}

// sameValue returns the payload written otherwise: compacted, indented, its
// keys sorted (json.Marshal sorts map keys), and with an unknown field.
// It returns nothing for a payload that is not one JSON object.
func sameValue(payload []byte) [][]byte {
	fields, problem := decodePayload(payload)
	if problem != "" || !json.Valid(payload) {
		return nil
	}
	var compact, indented bytes.Buffer
	_ = json.Compact(&compact, payload)
	_ = json.Indent(&indented, payload, "\n", "\t ")
	sorted, err := json.Marshal(fields)
	if err != nil {
		return [][]byte{compact.Bytes(), indented.Bytes()}
	}
	variants := [][]byte{compact.Bytes(), indented.Bytes(), sorted}
	const unknown = "fuzz_unknown_field"
	if _, taken := fields[unknown]; !taken {
		fields[unknown] = []any{json.Number("1"), "x", nil}
		extended, _ := json.Marshal(fields)
		variants = append(variants, extended)
	}
	return variants
}

// checkStrictIngest checks that strict ingestion of an envelope with this
// payload agrees with plain ingestion and the type's Check (checkErr).
func checkStrictIngest(t *testing.T, name string, payload []byte, checkErr error) {
	t.Helper()
	if !utf8.Valid(payload) || !json.Valid(payload) {
		return // no envelope can carry it
	}
	envelope := []byte(`{"event_type":"` + name + `","source":"fuzz","payload":` + string(payload) + `}`)
	if !json.Valid(envelope) {
		return // nested too deep for encoding/json
	}
	_, plainErr := DecodeEvent(envelope, DecodeOptions{})
	_, strictErr := DecodeEvent(envelope, DecodeOptions{Strict: true})
	switch {
	case plainErr != nil:
		if strictErr == nil {
			t.Errorf("%s: strict ingestion accepts what plain ingestion refuses (%v)", name, plainErr)
		}
	case checkErr == nil:
		if strictErr != nil {
			t.Errorf("%s: Check accepts, strict ingestion refuses: %v", name, strictErr)
		}
	default:
		se, _ := errors.AsType[*ValidationError](strictErr)
		ce, _ := errors.AsType[*ValidationError](checkErr)
		if se == nil || ce == nil || !reflect.DeepEqual(se.Errors, ce.Errors) {
			t.Errorf("%s: Check refuses with %v, strict ingestion with %v", name, checkErr, strictErr)
		}
	}
}

// checkMeaning holds, for each built-in type, what an accepted payload's
// enrichment must say about it.
var checkMeaning = map[string]func(t *testing.T, payload []byte, e Enrichment){
	"user.signup": func(t *testing.T, payload []byte, e Enrichment) {
		fields := decodedFields(t, payload)
		email, _ := fields["email"].(string)
		normalized, _ := e["email_normalized"].(string)
		domain, _ := e["email_domain"].(string)
		if len(e) != 2 || normalized != strings.ToLower(strings.TrimSpace(email)) ||
			domain == "" || strings.Contains(domain, "@") || !strings.HasSuffix(normalized, "@"+domain) {
			t.Errorf("user.signup: email %q, enrichment %#v", email, e)
		}
	},
	"user.login": func(t *testing.T, payload []byte, e Enrichment) {
		fields := decodedFields(t, payload)
		ip, hasIP := fields["ip"].(string)
		if !hasIP {
			if len(e) != 0 {
				t.Errorf("user.login without ip: enrichment %#v", e)
			}
			return
		}
		addr, err := netip.ParseAddr(ip)
		want := 6
		if err == nil && addr.Is4() {
			want = 4
		}
		if err != nil || len(e) != 1 || e["ip_version"] != want {
			t.Errorf("user.login: ip %q (%v), enrichment %#v, want ip_version %d", ip, err, e, want)
		}
	},
	"page.view": func(t *testing.T, payload []byte, e Enrichment) {
		fields := decodedFields(t, payload)
		raw, _ := fields["url"].(string)
		u, err := url.Parse(raw)
		host, _ := e["url_host"].(string)
		path, _ := e["url_path"].(string)
		if err != nil || len(e) != 2 || host == "" || host != strings.ToLower(u.Host) ||
			!strings.HasPrefix(path, "/") || strings.ContainsRune(path, 0) || strings.ContainsRune(host, 0) ||
			strings.ContainsRune(host, utf8.RuneError) && !strings.ContainsRune(raw, utf8.RuneError) {
			t.Errorf("page.view: url %q, enrichment %#v", raw, e)
		}
	},
	"order.placed": func(t *testing.T, payload []byte, e Enrichment) {
		fields := decodedFields(t, payload)
		items, _ := fields["items"].([]any)
		count, total := new(big.Rat), new(big.Rat)
		for _, item := range items {
			item, _ := item.(map[string]any)
			q, _ := new(big.Rat).SetString(string(item["quantity"].(json.Number)))
			p, _ := new(big.Rat).SetString(string(item["unit_price"].(json.Number)))
			count.Add(count, q)
			total.Add(total, new(big.Rat).Mul(q, p))
		}
		itemCount, _ := e["item_count"].(int64)
		amount, _ := e["total_amount"].(json.Number)
		got, ok := new(big.Rat).SetString(string(amount))
		cents := strings.Split(string(amount), ".")
		// |total_amount - total| ≤ 0.005, with exactly two decimals.
		diff := new(big.Rat).Abs(new(big.Rat).Sub(got, total))
		if len(e) != 2 || len(items) == 0 || !count.IsInt() || count.Num().Cmp(big.NewInt(itemCount)) != 0 ||
			itemCount < int64(len(items)) || !ok || got.Sign() < 0 || len(cents) != 2 || len(cents[1]) != 2 ||
			diff.Cmp(big.NewRat(1, 200)) > 0 {
			t.Errorf("order.placed: %d items, enrichment %#v; want item_count %s and total_amount %s to the cent",
				len(items), e, count.RatString(), total.FloatString(4))
		}
	},
}

// decodedFields decodes an accepted payload's fields, numbers as
// json.Number.
func decodedFields(t *testing.T, payload []byte) map[string]any {
	t.Helper()
	fields, problem := decodePayload(payload)
	if problem != "" {
		t.Fatalf("accepted a payload that does not decode: %s", problem)
	}
	return fields
}

// repeatedKeyByTokens is repeatedKey written plainly with encoding/json's
// tokens, to check the fast one against.
func repeatedKeyByTokens(data []byte, prefix string) (string, bool) {
	type container struct {
		path  string
		keys  map[string]bool // nil for an array
		index int             // the next element of an array
		key   string          // the current member of an object
		isKey bool            // the next token of an object is a key
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*container
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			continue
		}
		path := prefix
		if n := len(stack); n > 0 {
			top := stack[n-1]
			switch {
			case top.keys != nil && top.isKey:
				key := tok.(string)
				if top.keys[key] {
					return top.path + "." + key, true
				}
				top.keys[key], top.key, top.isKey = true, key, false
				continue
			case top.keys != nil:
				path, top.isKey = top.path+"."+top.key, true
			default:
				path = fmt.Sprintf("%s[%d]", top.path, top.index)
				top.index++
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &container{path: path, keys: map[string]bool{}, isKey: true})
		case json.Delim('['):
			stack = append(stack, &container{path: path})
		}
	}
}
