package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/hotmod/hotmod/internal/statedir"
	"github.com/hotmod/hotmod/sdk"
)

// newAPI returns the API over a registry holding mods.
func newAPI(t *testing.T, mods ...*sdk.Module) (http.Handler, *hotmod.Registry) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := hotmod.New(hotmod.WithLogger(logger), hotmod.WithDrainTimeout(5*time.Second))
	t.Cleanup(func() {
		if err := reg.Close(context.Background()); err != nil {
			t.Errorf("closing the registry: %v", err)
		}
	})
	for _, m := range mods {
		if _, err := reg.Register(context.Background(), m); err != nil {
			t.Fatalf("registering %s@%s: %v", m.Name(), m.Version(), err)
		}
	}
	return authed(t, reg, logger), reg
}

// authed is the API over reg with authentication on, as a client with an
// admin token sees it: the one place tests add the token (and declare a
// POST body as JSON).
func authed(t *testing.T, reg *hotmod.Registry, logger *slog.Logger, opts ...server.Option) http.Handler {
	t.Helper()
	dir, err := statedir.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := tokens.LocalAdmin()
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(reg, logger, append([]server.Option{server.WithAuth(tokens)}, opts...)...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+admin)
		}
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") == "" {
			r.Header.Set("Content-Type", "application/json")
		}
		h.ServeHTTP(w, r)
	})
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody is the shape of every failed answer.
type errorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (r response) errorBody(t *testing.T) (code, message string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil {
		t.Fatalf("status %d: body %q is not an error object (%v)", r.status, r.body, err)
	}
	return e.Error.Code, e.Error.Message
}

func do(t *testing.T, h http.Handler, method, target, body string) response {
	t.Helper()
	return doCtx(t, context.Background(), h, method, target, body)
}

func doCtx(t *testing.T, ctx context.Context, h http.Handler, method, target, body string) response {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, target, ct)
	}
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

// lab is a module with one method per behaviour the tests need.
func lab() *sdk.Module {
	return sdk.New("lab", "1.0.0").
		Handle("fail", func(_ context.Context, p map[string]any) (map[string]any, error) {
			code, _ := p["code"].(string)
			if code == "" {
				return nil, errors.New("plain error from the module")
			}
			return nil, sdk.Errorf(sdk.Code(code), "asked to fail with %s", code)
		}).
		Handle("wait", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}).
		Handle("panic", func(_ context.Context, p map[string]any) (map[string]any, error) {
			if p["panic"] == true {
				panic("the lab blew up")
			}
			return map[string]any{"ok": true}, nil
		}).
		Handle("types", func(_ context.Context, p map[string]any) (map[string]any, error) {
			out := map[string]any{}
			typesOf(p, "", out)
			return out, nil
		}).
		Handle("sum", func(_ context.Context, p map[string]any) (map[string]any, error) {
			a, aok := p["a"].(int64)
			b, bok := p["b"].(int64)
			if !aok || !bok {
				return nil, sdk.Errorf(sdk.CodeBadParams, "a and b must arrive as int64, got %T and %T", p["a"], p["b"])
			}
			return map[string]any{"sum": a + b}, nil
		}).
		Handle("return", func(_ context.Context, p map[string]any) (map[string]any, error) {
			return results[p["what"].(string)], nil
		})
}

// results are what lab.return sends back, by name.
var results = map[string]map[string]any{
	"nil":    nil,
	"float":  {"f": float64(2), "g": 2.5, "h": float32(0.1), "big": 1e21, "small": 1e-7},
	"ints":   {"i": int64(-3), "j": 7, "k": uint8(255), "l": int32(-1 << 31), "m": uint64(1 << 63 >> 1)},
	"bytes":  {"b": []byte("hi!"), "empty": []byte{}},
	"nested": {"list": []any{int64(1), "two", nil, true, map[string]any{"x": 1.5}}, "empty": []any{}},
	"text":   {"s": "a<b & \"c\"\n\t\x01é\u2028"},
	"time":   {"when": time.Unix(0, 0)},
	"deep":   {"outer": map[string]any{"list": []any{1, struct{}{}}}},
	"nan":    {"x": []any{0.5, nanValue()}},
	"huge":   {"u": uint64(1<<63 + 1)},
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

// typesOf records the Go type of every leaf of v under its path.
func typesOf(v any, path string, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			typesOf(e, p, out)
		}
	case []any:
		for i, e := range x {
			typesOf(e, path+"["+strconv.Itoa(i)+"]", out)
		}
	default:
		out[path] = fmt.Sprintf("%T", v)
	}
}

func version(v string) *sdk.Module {
	return sdk.New("greeter", v).Handle("version", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"version": v}, nil
	})
}

func TestInvokeErrorStatus(t *testing.T) {
	h, _ := newAPI(t, lab())
	cases := []struct {
		name, target, body string
		status             int
		code               string
		msg                string // a part of the message
	}{
		{"unknown module", "/v1/invoke/nope/x", "", 404, "unknown_module", `no module "nope" is loaded (loaded: lab)`},
		{"unknown method", "/v1/invoke/lab/nope", "", 404, "unknown_method", "it has: fail, panic, return, sum, types, wait"},
		{"bad range", "/v1/invoke/lab@%5Ebogus/sum", "", 404, "unknown_module", "neither a version"},
		{"bad params from module", "/v1/invoke/lab/sum", `{"a":"1","b":2}`, 400, "bad_params", "must arrive as int64"},
		{"module says unknown_module", "/v1/invoke/lab/fail", `{"code":"unknown_module"}`, 404, "unknown_module", "asked to fail"},
		{"module says unknown_method", "/v1/invoke/lab/fail", `{"code":"unknown_method"}`, 404, "unknown_method", "asked to fail"},
		{"module says bad_params", "/v1/invoke/lab/fail", `{"code":"bad_params"}`, 400, "bad_params", "asked to fail"},
		{"module says not_active", "/v1/invoke/lab/fail", `{"code":"not_active"}`, 503, "not_active", "asked to fail"},
		{"module says timeout", "/v1/invoke/lab/fail", `{"code":"timeout"}`, 504, "timeout", "asked to fail"},
		{"module says incompatible", "/v1/invoke/lab/fail", `{"code":"incompatible"}`, 409, "incompatible", "asked to fail"},
		{"module says panic", "/v1/invoke/lab/fail", `{"code":"panic"}`, 500, "panic", "asked to fail"},
		{"module says internal", "/v1/invoke/lab/fail", `{"code":"internal"}`, 500, "internal", "asked to fail"},
		{"module says module_error", "/v1/invoke/lab/fail", `{"code":"module_error"}`, 500, "module_error", "asked to fail"},
		{"module invents a code", "/v1/invoke/lab/fail", `{"code":"teapot"}`, 500, "teapot", "asked to fail"},
		{"plain error", "/v1/invoke/lab/fail", `{}`, 500, "module_error", "plain error from the module"},
		{"panic", "/v1/invoke/lab/panic", `{"panic":true}`, 500, "panic", "the lab blew up"},
		{"result outside the value model", "/v1/invoke/lab/return", `{"what":"time"}`, 500, "module_error", "method return returned a result that cannot cross the boundary: when: time.Time is not in the value model"},
		{"nested bad result", "/v1/invoke/lab/return", `{"what":"deep"}`, 500, "module_error", "outer.list[1]: struct {} is not in the value model"},
		{"NaN result", "/v1/invoke/lab/return", `{"what":"nan"}`, 500, "internal", "x[1]: NaN has no JSON form"},
		{"uint64 result too big", "/v1/invoke/lab/return", `{"what":"huge"}`, 500, "module_error", "u: 9223372036854775809 does not fit in int64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, h, "POST", c.target, c.body)
			if r.status != c.status {
				t.Errorf("status %d, want %d (body %s)", r.status, c.status, r.body)
			}
			code, msg := r.errorBody(t)
			if code != c.code || !strings.Contains(msg, c.msg) {
				t.Errorf("error %s: %q, want %s and a message containing %q", code, msg, c.code, c.msg)
			}
		})
	}
}

func TestInvokeTimeout(t *testing.T) {
	h, _ := newAPI(t, lab())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	r := doCtx(t, ctx, h, "POST", "/v1/invoke/lab/wait", "")
	if code, msg := r.errorBody(t); r.status != http.StatusGatewayTimeout || code != "timeout" {
		t.Errorf("got %d %s: %s, want 504 timeout", r.status, code, msg)
	}
}

func TestInvokeNotActive(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	slow := sdk.New("slow", "1.0.0").Handle("block", func(context.Context, map[string]any) (map[string]any, error) {
		close(entered)
		<-release
		return map[string]any{}, nil
	})
	h, reg := newAPI(t, slow)

	blocked := make(chan response, 1)
	go func() { blocked <- do(t, h, "POST", "/v1/invoke/slow/block", "") }()
	<-entered
	unloaded := make(chan error, 1)
	go func() { unloaded <- reg.Unload(context.Background(), "slow") }()
	waitFor(t, func() bool {
		mods := reg.Modules()
		return len(mods) == 1 && mods[0].State == hotmod.StateDraining
	})

	r := do(t, h, "POST", "/v1/invoke/slow@1.0.0/block", "")
	if code, msg := r.errorBody(t); r.status != http.StatusServiceUnavailable || code != "not_active" || !strings.Contains(msg, "slow@1.0.0 is Draining") {
		t.Errorf("while draining: %d %s: %s, want 503 not_active naming the state", r.status, code, msg)
	}
	close(release)
	if r := <-blocked; r.status != http.StatusOK {
		t.Errorf("the call in flight during the drain: %d %s, want 200", r.status, r.body)
	}
	if err := <-unloaded; err != nil {
		t.Errorf("Unload: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestInvokeNumbers(t *testing.T) {
	h, _ := newAPI(t, lab())
	cases := []struct {
		name, method, body, want string
	}{
		{"integers stay integers", "sum", `{"a":1,"b":2}`, `{"sum":3}`},
		{"int64 extremes", "sum", `{"a":9223372036854775807,"b":-9223372036854775808}`, `{"sum":-1}`},
		{"kinds of numbers", "types", `{"i":1,"neg":-7,"zero":-0,"f":1.5,"whole":2.0,"exp":1e3,"bigint":99999999999999999999,"s":"1"}`,
			`{"bigint":"float64","exp":"float64","f":"float64","i":"int64","neg":"int64","s":"string","whole":"float64","zero":"int64"}`},
		{"nested", "types", `{"o":{"l":[1,2.5,{"x":3}],"n":null,"b":true}}`,
			`{"o.b":"bool","o.l[0]":"int64","o.l[1]":"float64","o.l[2].x":"int64","o.n":"<nil>"}`},
		{"empty body is no params", "types", ``, `{}`},
		{"blank body is no params", "types", " \n\t", `{}`},
		{"floats are written as floats", "return", `{"what":"float"}`, `{"big":1e+21,"f":2.0,"g":2.5,"h":0.1,"small":1e-7}`},
		{"integer kinds are written as integers", "return", `{"what":"ints"}`, `{"i":-3,"j":7,"k":255,"l":-2147483648,"m":4611686018427387904}`},
		{"bytes are base64", "return", `{"what":"bytes"}`, `{"b":"aGkh","empty":""}`},
		{"nested results", "return", `{"what":"nested"}`, `{"empty":[],"list":[1,"two",null,true,{"x":1.5}]}`},
		{"strings", "return", `{"what":"text"}`, `{"s":"a<b & \"c\"\n\t\u0001é\u2028"}`},
		{"nil result is an empty object", "return", `{"what":"nil"}`, `{}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, h, "POST", "/v1/invoke/lab/"+c.method, c.body)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := strings.TrimSuffix(string(r.body), "\n"); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestInvokeBadBody(t *testing.T) {
	h, _ := newAPI(t, lab())
	cases := []struct {
		name, body, msg string
	}{
		{"truncated", `{"a":1`, "the body ends in the middle of a value"},
		{"syntax", `{"a":}`, "malformed JSON at byte 6"},
		{"not JSON", `<params name="Ada"/>`, "malformed JSON at byte 1: invalid character '<'"},
		{"array", `[1,2]`, "params must be a JSON object, not an array: send e.g. {\"name\":\"Ada\"}"},
		{"string", `"Ada"`, "not a string"},
		{"number", `42`, "not a number"},
		{"null", `null`, "not null"},
		{"two objects", `{"a":1} {"b":2}`, "unexpected data after the params object at byte 7"},
		{"float out of range", `{"x":[1e400]}`, "x[0]: 1e400 is out of range"},
		{"too deep", strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70), "nested deeper than 64 levels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, h, "POST", "/v1/invoke/lab/types", c.body)
			code, msg := r.errorBody(t)
			if r.status != http.StatusBadRequest || code != "bad_params" || !strings.Contains(msg, c.msg) {
				t.Errorf("got %d %s: %q, want 400 bad_params containing %q", r.status, code, msg, c.msg)
			}
		})
	}

	t.Run("too large", func(t *testing.T) {
		body := `{"s":"` + strings.Repeat("x", server.MaxBody) + `"}`
		r := do(t, h, "POST", "/v1/invoke/lab/types", body)
		code, msg := r.errorBody(t)
		if r.status != http.StatusRequestEntityTooLarge || code != "bad_params" || !strings.Contains(msg, "larger than 8 MiB") {
			t.Errorf("got %d %s: %q, want 413 bad_params saying the limit", r.status, code, msg)
		}
	})
}

func TestInvokePanicThenServes(t *testing.T) {
	h, _ := newAPI(t, lab())
	for i, want := range []int{500, 200, 500, 200} {
		body := fmt.Sprintf(`{"panic":%v}`, want == 500)
		if r := do(t, h, "POST", "/v1/invoke/lab/panic", body); r.status != want {
			t.Fatalf("call %d: status %d (%s), want %d", i, r.status, r.body, want)
		}
	}
	if r := do(t, h, "POST", "/v1/invoke/lab/sum", `{"a":40,"b":2}`); r.status != 200 || string(r.body) != "{\"sum\":42}\n" {
		t.Errorf("another method after the panics: %d %s", r.status, r.body)
	}
}

func TestInvokeRefs(t *testing.T) {
	h, _ := newAPI(t, version("1.0.0"), version("1.1.0"), version("2.0.0"))
	cases := []struct {
		ref, want string
	}{
		{"greeter", "2.0.0"},
		{"greeter@1.0.0", "1.0.0"},
		{"greeter@^1.0", "1.1.0"},
		{"greeter@%5E1.0", "1.1.0"},
		{"greeter@~1.0", "1.0.0"},
		{"greeter@%3E%3D1.0%20%3C2", "1.1.0"},
		{"greeter@2", "2.0.0"},
		{"greeter%402.0.0", "2.0.0"},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			r := do(t, h, "POST", "/v1/invoke/"+c.ref+"/version", "")
			want := `{"version":"` + c.want + `"}` + "\n"
			if r.status != 200 || string(r.body) != want {
				t.Errorf("got %d %s, want %s", r.status, r.body, want)
			}
		})
	}
	r := do(t, h, "POST", "/v1/invoke/greeter@%5E3/version", "")
	if code, msg := r.errorBody(t); r.status != 404 || code != "unknown_module" || !strings.Contains(msg, `no active version of greeter matches "greeter@^3" (active: `) {
		t.Errorf("no version in range: %d %s: %s", r.status, code, msg)
	}
}

func TestModules(t *testing.T) {
	h, _ := newAPI(t, version("1.0.0"), version("2.0.0"), lab())

	var list struct {
		Modules []map[string]any `json:"modules"`
	}
	r := do(t, h, "GET", "/v1/modules", "")
	if err := json.Unmarshal(r.body, &list); r.status != 200 || err != nil {
		t.Fatalf("GET /v1/modules: %d %s (%v)", r.status, r.body, err)
	}
	var got []string
	for _, m := range list.Modules {
		got = append(got, fmt.Sprintf("%s@%s %s %s in_flight=%v", m["name"], m["version"], m["transport"], m["state"], m["in_flight"]))
		if _, ok := m["manifest"]; ok {
			t.Errorf("%s@%s: the list carries a manifest; only /v1/modules/{name} should", m["name"], m["version"])
		}
	}
	want := []string{
		"greeter@2.0.0 builtin Active in_flight=0",
		"greeter@1.0.0 builtin Active in_flight=0",
		"lab@1.0.0 builtin Active in_flight=0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("GET /v1/modules:\ngot  %q\nwant %q", got, want)
	}

	var one struct {
		Name     string              `json:"name"`
		Versions []hotmod.ModuleInfo `json:"versions"`
	}
	r = do(t, h, "GET", "/v1/modules/greeter", "")
	if err := json.Unmarshal(r.body, &one); r.status != 200 || err != nil {
		t.Fatalf("GET /v1/modules/greeter: %d %s (%v)", r.status, r.body, err)
	}
	if one.Name != "greeter" || len(one.Versions) != 2 {
		t.Fatalf("GET /v1/modules/greeter: %s", r.body)
	}
	for _, v := range one.Versions {
		if v.Manifest == nil || v.Manifest.Version != v.Version || len(v.Manifest.Methods) != 1 || v.Manifest.Methods[0].Name != "version" {
			t.Errorf("greeter@%s: manifest %+v, want one with the method version", v.Version, v.Manifest)
		}
	}

	r = do(t, h, "GET", "/v1/modules/nope", "")
	if code, msg := r.errorBody(t); r.status != 404 || code != "unknown_module" || !strings.Contains(msg, "loaded: greeter, lab") {
		t.Errorf("GET /v1/modules/nope: %d %s: %s", r.status, code, msg)
	}
}

func TestCapabilities(t *testing.T) {
	provider := func(name, version, capVersion string) *sdk.Module {
		return sdk.New(name, version).Provides("geocoding", capVersion).Handle("x", func(context.Context, map[string]any) (map[string]any, error) {
			return map[string]any{}, nil
		})
	}
	h, _ := newAPI(t, provider("geo", "1.0.0", "1.2.0"), provider("maps", "3.0.0", "2.0.0"), lab())
	var got struct {
		Capability string              `json:"capability"`
		Providers  []hotmod.ModuleInfo `json:"providers"`
	}
	for target, want := range map[string]string{
		"/v1/capabilities/geocoding":              "geocoding: maps@3.0.0 geo@1.0.0",
		"/v1/capabilities/geocoding?range=%5E1.1": "geocoding: geo@1.0.0",
		"/v1/capabilities/geocoding?range=^3":     "geocoding:",
		"/v1/capabilities/routing":                "routing:",
	} {
		r := do(t, h, "GET", target, "")
		got.Providers = nil
		if err := json.Unmarshal(r.body, &got); r.status != 200 || err != nil {
			t.Fatalf("GET %s: %d %s (%v)", target, r.status, r.body, err)
		}
		s := got.Capability + ":"
		for _, p := range got.Providers {
			s += " " + p.Ref()
		}
		if s != want {
			t.Errorf("GET %s: %s, want %s", target, s, want)
		}
	}
	r := do(t, h, "GET", "/v1/capabilities/geocoding?range=%23", "")
	if code, _ := r.errorBody(t); r.status != 400 || code != "bad_params" {
		t.Errorf("a bad range: %d %s", r.status, r.body)
	}
}

func TestModulesEmpty(t *testing.T) {
	h, _ := newAPI(t)
	if r := do(t, h, "GET", "/v1/modules", ""); r.status != 200 || string(r.body) != "{\"modules\":[]}\n" {
		t.Errorf("empty registry: %d %s, want an empty list", r.status, r.body)
	}
}

func TestRoutes(t *testing.T) {
	h, _ := newAPI(t, lab())
	cases := []struct {
		method, target string
		status         int
		code, allow    string
	}{
		{"GET", "/healthz", 200, "", ""},
		{"HEAD", "/healthz", 200, "", ""},
		{"POST", "/healthz", 405, "method_not_allowed", "GET"},
		{"GET", "/v1/invoke/lab/sum", 405, "method_not_allowed", "POST"},
		{"PUT", "/v1/modules/lab", 405, "method_not_allowed", "GET, DELETE"},
		{"GET", "/v1/modules/lab/promote", 405, "method_not_allowed", "POST"},
		{"POST", "/v1/modules", 405, "method_not_allowed", "GET"},
		{"GET", "/v1/nothing", 404, "not_found", ""},
		{"POST", "/v1/invoke/lab", 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			r := do(t, h, c.method, c.target, "")
			if r.status != c.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, c.status)
			}
			if c.code == "" {
				if c.method == "GET" && string(r.body) != "{\"status\":\"ok\"}\n" {
					t.Errorf("body %s", r.body)
				}
				return
			}
			if code, msg := r.errorBody(t); code != c.code || msg == "" {
				t.Errorf("error %s: %q, want %s with a message", code, msg, c.code)
			}
			if got := r.header.Get("Allow"); got != c.allow {
				t.Errorf("Allow %q, want %q", got, c.allow)
			}
		})
	}
}

// TestHammer calls, lists and swaps versions from many goroutines at once
// (run it with -race).
func TestHammer(t *testing.T) {
	h, reg := newAPI(t, lab(), version("1.0.0"))
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				body := fmt.Sprintf(`{"a":%d,"b":%d}`, g, i)
				r := do(t, h, "POST", "/v1/invoke/lab/sum", body)
				if want := fmt.Sprintf("{\"sum\":%d}\n", g+i); r.status != 200 || string(r.body) != want {
					errs <- fmt.Sprintf("sum %s: %d %s", body, r.status, r.body)
					return
				}
				if r := do(t, h, "POST", "/v1/invoke/greeter/version", ""); r.status != 200 {
					errs <- fmt.Sprintf("greeter: %d %s", r.status, r.body)
					return
				}
				if r := do(t, h, "GET", "/v1/modules", ""); r.status != 200 {
					errs <- fmt.Sprintf("list: %d %s", r.status, r.body)
					return
				}
			}
		}()
	}
	for v := 1; v <= 5; v++ {
		if _, err := reg.Register(context.Background(), version(fmt.Sprintf("1.%d.0", v))); err != nil {
			t.Errorf("register: %v", err)
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestStatusOf(t *testing.T) {
	// Every code of the contract has a status, and only the ones that are
	// the caller's fault are 4xx.
	codes := map[sdk.Code]int{
		sdk.CodeUnknownModule: 404, sdk.CodeUnknownMethod: 404, sdk.CodeBadParams: 400,
		sdk.CodeTimeout: 504, sdk.CodePanic: 500, sdk.CodeNotActive: 503,
		sdk.CodeIncompatible: 409, sdk.CodeInternal: 500, sdk.CodeModule: 500,
		sdk.CodeOverloaded: 503, sdk.CodeCircuitOpen: 503,
		sdk.CodeInUse: 409, sdk.CodeUndeclared: 500, sdk.CodeCallDepth: 500,
		server.CodeNotFound: 404, server.CodeMethodNotAllowed: 405,
	}
	var names []string
	for c := range codes {
		names = append(names, string(c))
	}
	sort.Strings(names)
	for _, n := range names {
		if got, want := server.StatusOf(sdk.Code(n)), codes[sdk.Code(n)]; got != want {
			t.Errorf("StatusOf(%s) = %d, want %d", n, got, want)
		}
	}
}

// FuzzDecodeParams checks that any body either fails with bad_params or
// decodes to value-model params that survive a round trip through the
// result encoder unchanged.
func FuzzDecodeParams(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"a":1,"b":2.5}`, `{"a":[1,{"b":null}],"c":"\u00e9"}`, `[1]`, `{"x":1e400}`,
		`{"n":-0}`, `{"n":99999999999999999999}`, `{"s":"\xff"}`, `{"a":1}{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		params, err := server.DecodeParams(body)
		if err != nil {
			if !errors.Is(err, sdk.ErrBadParams) {
				t.Fatalf("error %v is not bad_params", err)
			}
			return
		}
		if err := sdk.CheckParams(params); err != nil {
			t.Fatalf("decoded params outside the value model: %v", err)
		}
		enc := server.EncodeResult(params)
		again, err := server.DecodeParams(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if e2 := server.EncodeResult(again); !bytes.Equal(enc, e2) {
			t.Fatalf("round trip changed the value:\n%s\n%s", enc, e2)
		}
	})
}

func TestLogging(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := hotmod.New(hotmod.WithLogger(logger))
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	if _, err := reg.Register(context.Background(), lab()); err != nil {
		t.Fatal(err)
	}
	h := authed(t, reg, logger)
	do(t, h, "POST", "/v1/invoke/lab/sum", `{"a":1,"b":2}`)
	do(t, h, "POST", "/v1/invoke/lab/fail", `{"code":"bad_params"}`)
	do(t, h, "POST", "/v1/invoke/lab/fail", `{"code":"internal"}`)

	for _, want := range []string{
		`level=DEBUG msg=request method=POST path=/v1/invoke/lab/sum status=200 took=`,
		`level=DEBUG msg=request method=POST path=/v1/invoke/lab/fail status=400 took=`,
		`level=ERROR msg="call failed" module=lab version="" method=fail code=internal message="asked to fail with internal"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "code=bad_params") {
		t.Errorf("a caller's mistake was logged as a failure:\n%s", logs.String())
	}
}

func TestRollouts(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := hotmod.New(hotmod.WithLogger(logger), hotmod.WithRollout(hotmod.Manual()))
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := reg.Register(context.Background(), version(v)); err != nil {
			t.Fatal(err)
		}
	}
	h := authed(t, reg, logger)
	cases := []struct {
		method, target string
		status         int
		want           string
	}{
		{"GET", "/v1/rollouts", 200, `{"rollouts":[{"module":"greeter","policy":"manual","stable":"1.0.0","canary":"1.1.0","percent":0,`},
		{"GET", "/v1/rollouts/greeter", 200, `"next":"1.1.0 waits Standby`},
		{"GET", "/v1/rollouts/nope", 404, `"code":"unknown_module"`},
		{"POST", "/v1/modules/greeter/pin", 400, `name the exact version, e.g. greeter@1.2.3`},
		{"POST", "/v1/modules/greeter/promote", 200, `"stable":"1.1.0","percent":0,"standby":["1.0.0"]`},
		{"POST", "/v1/invoke/greeter/version", 200, `{"version":"1.1.0"}`},
		{"POST", "/v1/modules/greeter/rollback", 200, `"stable":"1.0.0"`},
		{"POST", "/v1/invoke/greeter/version", 200, `{"version":"1.0.0"}`},
		{"POST", "/v1/modules/greeter@1.0.0/pin", 200, `"pinned":true`},
		{"POST", "/v1/modules/greeter/rollback", 409, `greeter is pinned to 1.0.0: unpin it first`},
		{"POST", "/v1/modules/greeter/unpin", 200, `"stable":"1.0.0"`},
		{"POST", "/v1/modules/greeter/unpin", 503, `greeter is not pinned`},
		{"DELETE", "/v1/modules/greeter@1.0.0", 200, `{"unloaded":"greeter@1.0.0"}`},
		{"POST", "/v1/invoke/greeter/version", 503, `greeter@1.1.0 is Failed: not_active: rolled back by an operator to 1.0.0`},
	}
	for _, c := range cases {
		r := do(t, h, c.method, c.target, "{}")
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s %s: %d %s, want %d and %s", c.method, c.target, r.status, r.body, c.status, c.want)
		}
	}
}
