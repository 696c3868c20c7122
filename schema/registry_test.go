package schema_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/eventflow/eventflow/schema"
)

func okCheck(json.RawMessage) (schema.Enrichment, error) { return schema.Enrichment{}, nil }

func TestNewRegistry(t *testing.T) {
	t.Parallel()
	reg, err := schema.NewRegistry(
		schema.EventType{Name: "b.second", Check: okCheck},
		schema.EventType{Name: "a.first", Check: okCheck},
	)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	if got, want := reg.Names(), []string{"a.first", "b.second"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if typ, ok := reg.Lookup("a.first"); !ok || typ.Name != "a.first" || typ.Check == nil {
		t.Errorf("Lookup(a.first) = %+v, %v; want the type", typ, ok)
	}
	if _, ok := reg.Lookup("c.third"); ok {
		t.Error("Lookup(c.third) found a type that was never registered")
	}

	names := reg.Names()
	names[0] = "changed"
	if got := reg.Names()[0]; got != "a.first" {
		t.Errorf("changing the slice Names returned changed the registry: Names()[0] = %q", got)
	}
}

func TestNewRegistry_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		types []schema.EventType
		want  string
	}{
		{"empty name", []schema.EventType{{Name: "", Check: okCheck}}, "event type #0 has an empty name"},
		{"nil Check", []schema.EventType{{Name: "a.b"}}, `event type "a.b" has no Check`},
		{"duplicate", []schema.EventType{{Name: "a.b", Check: okCheck}, {Name: "a.b", Check: okCheck}}, `event type "a.b" is registered twice`},
		{"duplicate built-in", append(schema.BuiltinTypes(), schema.EventType{Name: "user.login", Check: okCheck}), `event type "user.login" is registered twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg, err := schema.NewRegistry(tt.types...)
			if err == nil || reg != nil {
				t.Fatalf("NewRegistry = %v, %v; want an error", reg, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNewRegistry_Empty(t *testing.T) {
	t.Parallel()
	reg, err := schema.NewRegistry()
	if err != nil {
		t.Fatalf("NewRegistry(): %v", err)
	}
	if names := reg.Names(); len(names) != 0 {
		t.Errorf("Names() = %q, want none", names)
	}
}

func TestBuiltinTypes(t *testing.T) {
	t.Parallel()
	var names []string
	for _, typ := range schema.BuiltinTypes() {
		names = append(names, typ.Name)
	}
	if want := []string{"user.signup", "user.login", "page.view", "order.placed"}; !slices.Equal(names, want) {
		t.Errorf("BuiltinTypes() names = %q, want %q", names, want)
	}
}

func TestDefaultRegistry(t *testing.T) {
	t.Parallel()
	reg := schema.DefaultRegistry()
	if want := []string{"order.placed", "page.view", "user.login", "user.signup"}; !slices.Equal(reg.Names(), want) {
		t.Errorf("Names() = %q, want %q", reg.Names(), want)
	}
	if schema.DefaultRegistry() != reg {
		t.Error("DefaultRegistry() built a second registry")
	}
}

// checkBuiltin runs the Check of a built-in type.
func checkBuiltin(t *testing.T, name, payload string) (schema.Enrichment, error) {
	t.Helper()
	typ, ok := schema.DefaultRegistry().Lookup(name)
	if !ok {
		t.Fatalf("built-in type %q is not registered", name)
	}
	return typ.Check(json.RawMessage(payload))
}

// fieldErrors returns the fields of a *ValidationError, failing the test
// when err is anything else.
func fieldErrors(t *testing.T, err error) []schema.FieldError {
	t.Helper()
	ve, ok := errors.AsType[*schema.ValidationError](err)
	if !ok {
		t.Fatalf("error = %v (%T), want *ValidationError", err, err)
	}
	return ve.Errors
}
