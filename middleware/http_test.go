package middleware_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventflow/eventflow/middleware"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	var seen string
	h := middleware.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = middleware.RequestIDFrom(r.Context())
	}))
	for _, tc := range []struct {
		name, in string
		echoed   bool
	}{
		{"echoed", "req-123", true},
		{"absent", "", false},
		{"too long", strings.Repeat("a", 129), false},
		{"not printable", "a b", false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.in != "" {
			req.Header.Set("X-Request-ID", tc.in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get("X-Request-ID")
		if got == "" || got != seen {
			t.Errorf("%s: header %q, context %q", tc.name, got, seen)
		}
		if (got == tc.in) != tc.echoed {
			t.Errorf("%s: got %q, echoed=%v", tc.name, got, tc.echoed)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	guarded := middleware.RequestID(middleware.APIKeys([]string{"secret-1", "secret-2"})(ok))
	for _, tc := range []struct {
		name, header, value string
		status              int
	}{
		{"none", "", "", 401},
		{"bearer", "Authorization", "Bearer secret-1", 204},
		{"bearer any case", "Authorization", "bearer secret-2", 204},
		{"x-api-key", "X-API-Key", "secret-2", 204},
		{"wrong", "X-API-Key", "secret-3", 401},
		{"prefix", "Authorization", "Bearer secret-", 401},
		{"longer", "Authorization", "Bearer secret-10", 401},
		{"basic scheme", "Authorization", "Basic secret-1", 401},
	} {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", nil)
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		rec := httptest.NewRecorder()
		guarded.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, rec.Code, tc.status)
		}
		if tc.status == 401 {
			var p struct {
				Status    int    `json:"status"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != 401 || p.RequestID == "" {
				t.Errorf("%s: problem body %s", tc.name, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "secret") {
				t.Errorf("%s: the answer mentions a key: %s", tc.name, rec.Body)
			}
		}
	}
	open := middleware.APIKeys(nil)(ok)
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != 204 {
		t.Errorf("no keys configured: status %d, want the request through", rec.Code)
	}
}

func TestRecover(t *testing.T) {
	t.Parallel()
	h := middleware.RequestID(middleware.Recover(slog.New(slog.DiscardHandler))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("panic answered %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}
