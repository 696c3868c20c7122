package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/eventflow/eventflow/middleware"
)

func TestRateLimitOffAndByAddress(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	off := middleware.RateLimit(0, 0, nil)(ok)
	for range 100 {
		rec := httptest.NewRecorder()
		off.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		if rec.Code != 204 || rec.Header().Get("RateLimit-Policy") != "" {
			t.Fatalf("a zero rate must not limit: %d %v", rec.Code, rec.Header())
		}
	}
	limited := 0
	h := middleware.RateLimit(1, 1, func() { limited++ })(ok)
	send := func(addr string) int {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if send("10.0.0.1:1111") != 204 || send("10.0.0.1:2222") != 429 {
		t.Error("without a key, one address (any port) is one client")
	}
	if send("10.0.0.2:1111") != 204 {
		t.Error("another address has its own budget")
	}
	if limited != 1 {
		t.Errorf("onLimited called %d times, want 1", limited)
	}
}
