package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// SPEC §5.4: /readyz is 200 while every check passes, 503 naming the one
// that fails, and 503 from the moment shutdown begins.
func TestReadyz(t *testing.T) {
	t.Parallel()
	storeErr := error(nil)
	a := &API{Checks: map[string]func(context.Context) error{
		"store":     func(context.Context) error { return storeErr },
		"transport": func(context.Context) error { return nil },
	}}
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		a.Readyz().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Errorf("all checks pass: %d %s", code, body)
	}
	storeErr = errors.New("connection refused")
	if code, body := get(); code != 503 || !strings.Contains(body, `"store":"connection refused"`) || !strings.Contains(body, `"transport":"ok"`) {
		t.Errorf("store down: %d %s", code, body)
	}
	storeErr = nil
	a.ShutDown()
	if code, body := get(); code != 503 || !strings.Contains(body, "shutting_down") {
		t.Errorf("after shutdown began: %d %s", code, body)
	}
}
