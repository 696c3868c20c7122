package middleware

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/handlers/problem"
)

// RequestIDHeader carries the request id, which is also the correlation id
// of the events a request posts.
const RequestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// RequestID echoes the request's X-Request-ID on the response, or makes one
// up when the request has none (or an unusable one: longer than 128 bytes,
// or not printable ASCII), and puts it in the request context.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !usableRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func usableRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// RequestIDFrom returns the request id that RequestID stored in ctx.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// APIKeys admits requests that carry one of keys, as "Authorization: Bearer
// <key>" or "X-API-Key: <key>", and answers the others 401. With no keys it
// admits everything. Keys are compared in constant time and never logged.
func APIKeys(keys []string) func(http.Handler) http.Handler {
	digests := make([][32]byte, len(keys))
	for i, k := range keys {
		digests[i] = sha256.Sum256([]byte(k))
	}
	return func(next http.Handler) http.Handler {
		if len(keys) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !keyAllowed(presentedKey(r), digests) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="eventflow"`)
				problem.Write(w, RequestIDFrom(r.Context()), problem.New(http.StatusUnauthorized,
					"send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func presentedKey(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

// keyAllowed compares digests, so that the time taken depends neither on
// the keys' lengths nor on where they differ, and checks every key.
func keyAllowed(key string, digests [][32]byte) bool {
	if key == "" {
		return false
	}
	d := sha256.Sum256([]byte(key))
	ok := 0
	for i := range digests {
		ok |= subtle.ConstantTimeCompare(d[:], digests[i][:])
	}
	return ok == 1
}

// Recover turns a panic in a handler into a logged 500 problem.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					logger.Error("panic in HTTP handler", "panic", v, "path", r.URL.Path,
						"request_id", RequestIDFrom(r.Context()), "stack", string(debug.Stack()))
					problem.Write(w, RequestIDFrom(r.Context()), problem.New(http.StatusInternalServerError, "internal error"))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
