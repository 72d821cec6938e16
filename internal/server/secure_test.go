package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/hotmod/hotmod/internal/statedir"
)

// secured is the API over a registry holding lab, with authentication on,
// and a token of each kind.
type secured struct {
	h                          http.Handler
	admin, reader, invoker, lb string // lb may call only lab
}

func newSecured(t testing.TB, opts ...server.Option) secured {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := hotmod.New(hotmod.WithLogger(logger))
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	if _, err := reg.Register(context.Background(), lab()); err != nil {
		t.Fatal(err)
	}
	dir, err := statedir.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var s secured
	s.admin, _, err = tokens.LocalAdmin()
	if err != nil {
		t.Fatal(err)
	}
	mk := func(p auth.Principal) string {
		tok, _, err := tokens.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	s.reader = mk(auth.Principal{Name: "reader", Role: auth.RoleRead})
	s.invoker = mk(auth.Principal{Name: "invoker", Role: auth.RoleInvoke})
	s.lb = mk(auth.Principal{Name: "lab-only", Role: auth.RoleInvoke, Modules: []string{"lab"}})
	s.h = server.New(reg, logger, append([]server.Option{server.WithAuth(tokens)}, opts...)...)
	return s
}

// call sends a request with token and headers (name, value pairs).
func call(h http.Handler, token, method, target, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoles(t *testing.T) {
	s := newSecured(t)
	sum := `{"a":1,"b":2}`
	cases := []struct {
		name, token, method, path, body string
		status                          int
		want                            string
	}{
		{"health needs nothing", "", "GET", "/healthz", "", 200, `"ok"`},
		{"no token", "", "GET", "/v1/modules", "", 401, "needs a token"},
		{"no token invoking", "", "POST", "/v1/invoke/lab/sum", sum, 401, "needs a token"},
		{"unknown token", "hm_nope", "GET", "/v1/modules", "", 401, "unknown or revoked"},
		{"unknown endpoint, no token", "", "GET", "/v2/x", "", 401, "needs a token"},
		{"read lists", s.reader, "GET", "/v1/modules", "", 200, `"lab"`},
		{"read cannot invoke", s.reader, "POST", "/v1/invoke/lab/sum", sum, 403, `has the role read; POST /v1/invoke/lab/sum needs invoke`},
		{"invoke invokes", s.invoker, "POST", "/v1/invoke/lab/sum", sum, 200, `{"sum":3}`},
		{"invoke lists", s.invoker, "GET", "/v1/modules/lab", "", 200, `"lab"`},
		{"invoke cannot manage tokens", s.invoker, "GET", "/v1/tokens", "", 403, "needs admin"},
		{"lab-only calls lab", s.lb, "POST", "/v1/invoke/lab@^1/sum", sum, 200, `{"sum":3}`},
		{"lab-only cannot call geo", s.lb, "POST", "/v1/invoke/geo/x", `{}`, 403, "may call only lab, not geo"},
		{"admin lists tokens", s.admin, "GET", "/v1/tokens", "", 200, `"lab-only"`},
		{"admin invokes", s.admin, "POST", "/v1/invoke/lab/sum", sum, 200, `{"sum":3}`},
		{"token list hides secrets", s.admin, "GET", "/v1/tokens", "", 200, `"role":"invoke","modules":["lab"]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := call(s.h, c.token, c.method, c.path, c.body)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
				t.Errorf("%d %s, want %d and %q", rec.Code, rec.Body, c.status, c.want)
			}
			if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if strings.Contains(rec.Body.String(), "hm_") {
				t.Errorf("a secret in the answer: %s", rec.Body)
			}
		})
	}
}

func TestTokenEndpoints(t *testing.T) {
	s := newSecured(t)
	rec := call(s.h, s.admin, "POST", "/v1/tokens", `{"role":"invoke","modules":["lab"],"name":"ci"}`)
	if rec.Code != 201 || !strings.Contains(rec.Body.String(), `"token":"hm_`) {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if rec := call(s.h, s.admin, "POST", "/v1/tokens", `{"role":"invoke","name":"ci"}`); rec.Code != 409 {
		t.Errorf("a name taken: %d %s", rec.Code, rec.Body)
	}
	if rec := call(s.h, s.admin, "POST", "/v1/tokens", `{"role":"root"}`); rec.Code != 400 || !strings.Contains(rec.Body.String(), "use read, invoke or admin") {
		t.Errorf("a bad role: %d %s", rec.Code, rec.Body)
	}
	if rec := call(s.h, s.admin, "DELETE", "/v1/tokens/reader", ""); rec.Code != 200 {
		t.Errorf("revoke: %d %s", rec.Code, rec.Body)
	}
	if rec := call(s.h, s.reader, "GET", "/v1/modules", ""); rec.Code != 401 {
		t.Errorf("a revoked token: %d", rec.Code)
	}
	if rec := call(s.h, s.admin, "DELETE", "/v1/tokens/reader", ""); rec.Code != 404 {
		t.Errorf("revoking twice: %d %s", rec.Code, rec.Body)
	}
}

func TestSecureByDefault(t *testing.T) {
	reg := hotmod.New()
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	if rec := call(server.New(reg, nil), "", "GET", "/v1/modules", ""); rec.Code != 401 || !strings.Contains(rec.Body.String(), "server.WithAuth") {
		t.Errorf("no auth option: %d %s", rec.Code, rec.Body)
	}
	if rec := call(server.New(reg, nil, server.WithoutAuth()), "", "GET", "/v1/modules", ""); rec.Code != 200 {
		t.Errorf("WithoutAuth: %d %s", rec.Code, rec.Body)
	}
}

func TestBrowserChecks(t *testing.T) {
	s := newSecured(t, server.WithLoopbackHosts(), server.WithAllowedOrigins("https://ops.example"))
	cases := []struct {
		name, method, body string
		header             []string
		status             int
		want               string
	}{
		{"text/plain POST", "POST", `{"a":1,"b":2}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type: application/json"},
		{"form POST", "POST", `a=1`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media"},
		{"json with charset", "POST", `{"a":1,"b":2}`, []string{"Content-Type", "application/json; charset=utf-8"}, 200, `"sum"`},
		{"foreign origin", "POST", `{"a":1,"b":2}`, []string{"Origin", "https://evil.example"}, 403, "--allow-origin https://evil.example"},
		{"allowed origin", "POST", `{"a":1,"b":2}`, []string{"Origin", "https://ops.example"}, 200, `"sum"`},
		{"rebound host", "POST", `{"a":1,"b":2}`, []string{"Host", "attacker.example:7700"}, 403, "not this machine"},
		{"localhost", "POST", `{"a":1,"b":2}`, []string{"Host", "localhost:7700"}, 200, `"sum"`},
		{"ipv6 loopback", "POST", `{"a":1,"b":2}`, []string{"Host", "[::1]:7700"}, 200, `"sum"`},
	}
	pre := call(s.h, "", "OPTIONS", "/v1/invoke/lab/sum", "", "Host", "127.0.0.1:7700", "Origin", "https://ops.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if pre.Code != 204 || pre.Header().Get("Access-Control-Allow-Origin") != "https://ops.example" || !strings.Contains(pre.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("the preflight of an allowed origin: %d %v", pre.Code, pre.Header())
	}
	if rec := call(s.h, s.admin, "GET", "/v1/modules", "", "Host", "127.0.0.1:7700", "Origin", "https://ops.example"); rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "https://ops.example" {
		t.Errorf("a request of an allowed origin: %d %v", rec.Code, rec.Header())
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			header := append([]string{"Host", "127.0.0.1:7700"}, c.header...)
			rec := call(s.h, s.admin, c.method, "/v1/invoke/lab/sum", c.body, header...)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
				t.Errorf("%d %s, want %d and %q", rec.Code, rec.Body, c.status, c.want)
			}
		})
	}
}

// TestBodyBudget: a request that finds the body budget taken waits, then
// gets 503.
func TestBodyBudget(t *testing.T) {
	s := newSecured(t, server.WithBodyBudget(server.MaxBody, 50*time.Millisecond))
	pr, pw := io.Pipe()
	req := httptest.NewRequest("POST", "/v1/invoke/lab/sum", pr)
	req.ContentLength = server.MaxBody // takes the whole budget
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		done <- rec.Code
	}()
	if _, err := pw.Write([]byte(`{"a":`)); err != nil { // the first request is reading
		t.Fatal(err)
	}
	start := time.Now()
	rec := call(s.h, s.admin, "POST", "/v1/invoke/lab/sum", `{"a":1,"b":2}`)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"overloaded"`) || time.Since(start) < 50*time.Millisecond {
		t.Errorf("with the budget taken: %d %s after %v", rec.Code, rec.Body, time.Since(start))
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if code := <-done; code != 400 {
		t.Errorf("the cut-off body: %d", code)
	}
	if rec := call(s.h, s.admin, "POST", "/v1/invoke/lab/sum", `{"a":1,"b":2}`); rec.Code != 200 {
		t.Errorf("with the budget free again: %d %s", rec.Code, rec.Body)
	}
}

// BenchmarkAuth is the cost of authentication per request: the same call
// through the API with a token (auth=on) and without (auth=off).
func BenchmarkAuth(b *testing.B) {
	on := newSecured(b)
	reg := hotmod.New(hotmod.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	b.Cleanup(func() { _ = reg.Close(context.Background()) })
	if _, err := reg.Register(context.Background(), lab()); err != nil {
		b.Fatal(err)
	}
	off := server.New(reg, nil, server.WithoutAuth())
	for _, c := range []struct {
		name  string
		h     http.Handler
		token string
	}{{"auth=off", off, ""}, {"auth=on", on.h, on.invoker}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if rec := call(c.h, c.token, "POST", "/v1/invoke/lab/sum", `{"a":1,"b":2}`); rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
