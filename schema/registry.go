package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// EventType is one kind of event eventflow accepts, such as "order.placed".
type EventType struct {
	// Name is the event_type clients send.
	Name string
	// Check validates a payload, a JSON object, against the type's rules
	// and returns its enrichment. A payload that breaks the rules returns
	// a *ValidationError listing every bad field, with paths prefixed
	// "payload." (such as "payload.email"). Check must be safe for
	// concurrent use and must not keep or modify payload.
	Check func(payload json.RawMessage) (Enrichment, error)
}

// Enrichment holds the fields that processing derives from a payload, such
// as "email_domain". The process handler stores it as JSON beside the
// payload in processed_events.
type Enrichment map[string]any

// Registry holds the event types eventflow accepts, by name. It does not
// change after NewRegistry and is safe for concurrent use.
type Registry struct {
	types map[string]EventType
	names []string // sorted
}

// NewRegistry returns a registry of the given types. It fails when a type
// has an empty name or no Check, or when two types share a name; the error
// names every such type.
func NewRegistry(types ...EventType) (*Registry, error) {
	r := &Registry{types: make(map[string]EventType, len(types))}
	var errs []error
	for i, t := range types {
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("event type #%d has an empty name", i))
			continue
		case t.Check == nil:
			errs = append(errs, fmt.Errorf("event type %q has no Check", t.Name))
		}
		if _, dup := r.types[t.Name]; dup {
			errs = append(errs, fmt.Errorf("event type %q is registered twice", t.Name))
			continue
		}
		r.types[t.Name] = t
		r.names = append(r.names, t.Name)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new registry: %w", errors.Join(errs...))
	}
	slices.Sort(r.names)
	return r, nil
}

// Lookup returns the type registered under name, and whether there is one.
func (r *Registry) Lookup(name string) (EventType, bool) {
	t, ok := r.types[name]
	return t, ok
}

// Names returns the registered type names in sorted order. The slice is
// the caller's to keep or modify.
func (r *Registry) Names() []string {
	return slices.Clone(r.names)
}
