package schema

import "sync"

// BuiltinTypes returns eventflow's built-in event types of SPEC §6, in this
// order: user.signup, user.login, page.view and order.placed. Each call
// returns a new slice, so callers may append their own types to it.
func BuiltinTypes() []EventType {
	return []EventType{
		userSignup(),
		userLogin(),
		pageView(),
		orderPlaced(),
	}
}

// DefaultRegistry returns the registry of the built-in types. It is built
// once and shared; a Registry never changes, so sharing it is safe.
func DefaultRegistry() *Registry {
	return defaultRegistry()
}

var defaultRegistry = sync.OnceValue(func() *Registry {
	return must(NewRegistry(BuiltinTypes()...))
})

// must returns v, or panics when err is not nil. It is for values that
// cannot fail, such as the registry of the built-in types.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
