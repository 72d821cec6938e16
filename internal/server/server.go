// Package server is hotmod's HTTP JSON API: it lets programs in any language
// call the modules of a Registry and see what it holds.
//
// Endpoints:
//
//	POST /v1/invoke/{module}/{method}   body: a JSON object of params (empty = {})
//	GET  /v1/modules                    {"modules": [ModuleInfo…]} without manifests
//	GET  /v1/modules/{name}             {"name": …, "versions": [ModuleInfo…]} with manifests
//	GET  /v1/capabilities/{name}        {"capability": …, "providers": [ModuleInfo…]}: the
//	                                    active versions providing it (?range=^1.2 narrows),
//	                                    the one a module requiring it reaches first
//	GET  /v1/events                     lifecycle events as they happen, as Server-Sent
//	                                    Events (see events.go)
//	GET  /healthz                       {"status": "ok"}
//
// More routes (GET /metrics, say) are given to New by the program.
//
// {module} is a reference as Registry.Invoke takes it: "greeter",
// "greeter@1.2.3" or "greeter@^1.2" (escaped or not: "greeter@%5E1.2").
//
// A successful call answers 200 with the method's result, a JSON object.
// Every failure answers {"error": {"code": "…", "message": "…"}}, with the
// codes of package sdk and these statuses:
//
//	unknown_module, unknown_method   404
//	bad_params                       400 (413 for a body over MaxBody)
//	not_active, overloaded,
//	circuit_open                     503
//	timeout                          504
//	incompatible, in_use             409
//	panic, module_error, internal,
//	undeclared, call_depth           500
//
// Two more codes appear only here, for requests that never reach a module:
// not_found (404, no such endpoint) and method_not_allowed (405).
//
// # Values
//
// Params and results are the value model of package sdk, and integers stay
// integers both ways: a JSON number written without a fraction or exponent
// reaches the module as an int64 (when it fits; otherwise a float64), any
// other number as a float64. On the way back an int64 is written as an
// integer literal and a float64 always with a fraction or exponent ("2.0",
// not "2"), so a client that reads numbers by the same rule gets back the
// types the module returned. A []byte in a result is written as a base64
// string (standard encoding, with padding), as encoding/json does.
package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// MaxBody is the largest request body the API reads: 8 MiB.
const MaxBody = 8 << 20

// Codes used only by this API, for requests that never reach a module.
const (
	CodeNotFound         sdk.Code = "not_found"          // no such endpoint
	CodeMethodNotAllowed sdk.Code = "method_not_allowed" // the endpoint exists, the HTTP method does not
)

// endpoints is what a request to an unknown path is told.
const endpoints = "POST /v1/invoke/{module}/{method}, GET /v1/modules, GET /v1/modules/{name}, GET /v1/capabilities/{name}, GET /v1/events, GET /healthz"

// Route is one more endpoint for the API to serve: Pattern as
// http.ServeMux takes it ("GET /metrics").
type Route struct {
	Pattern string
	Handler http.Handler
}

// New returns the API's handler for reg, with the extra routes. It logs to
// logger (nil means slog.Default()): calls that fail inside hotmod (code
// internal) as errors, and every request at debug level.
func New(reg *hotmod.Registry, logger *slog.Logger, extra ...Route) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	s := &api{reg: reg, logger: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/invoke/{module}/{method}", s.invoke)
	mux.HandleFunc("/v1/invoke/{module}/{method}", methodNotAllowed("POST"))
	mux.HandleFunc("GET /v1/modules", s.list)
	mux.HandleFunc("/v1/modules", methodNotAllowed("GET"))
	mux.HandleFunc("GET /v1/modules/{name}", s.module)
	mux.HandleFunc("/v1/modules/{name}", methodNotAllowed("GET"))
	mux.HandleFunc("GET /v1/capabilities/{name}", s.capability)
	mux.HandleFunc("/v1/capabilities/{name}", methodNotAllowed("GET"))
	mux.HandleFunc("GET /v1/events", s.events) // role: read
	mux.HandleFunc("/v1/events", methodNotAllowed("GET"))
	for _, r := range extra {
		mux.Handle(r.Pattern, r.Handler)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/healthz", methodNotAllowed("GET"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, &sdk.Error{Code: CodeNotFound,
			Message: fmt.Sprintf("no endpoint %s %s: the API has %s", r.Method, r.URL.Path, endpoints)})
	})
	return accessLog(mux, logger)
}

// accessLog logs every request at debug level: method, path, status and
// how long it took.
func accessLog(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !logger.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("took", time.Since(start)))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type api struct {
	reg    *hotmod.Registry
	logger *slog.Logger
}

func (s *api) invoke(w http.ResponseWriter, r *http.Request) {
	ref, method := r.PathValue("module"), r.PathValue("method")
	params, status, perr := readParams(w, r)
	if perr != nil {
		writeError(w, status, perr)
		return
	}
	out, err := s.reg.Invoke(r.Context(), ref, method, params)
	if err != nil {
		e := sdk.AsError(err)
		// A failure inside hotmod is news for the operator; a panic was
		// logged with its stack where it was recovered; the rest is the
		// caller's business (and in the debug log).
		if e.Code == sdk.CodeInternal {
			s.logger.Error("call failed", logRef(ref, method, "code", string(e.Code), "message", e.Message)...)
		}
		writeError(w, StatusOf(e.Code), e)
		return
	}
	body, err := encodeResult(out)
	if err != nil {
		e := sdk.Errorf(sdk.CodeInternal, "%s.%s returned a result that cannot be sent: %v", ref, method, err)
		s.logger.Error("bad result", logRef(ref, method, "message", e.Message)...)
		writeError(w, http.StatusInternalServerError, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (s *api) list(w http.ResponseWriter, _ *http.Request) {
	mods := s.reg.Modules()
	for i := range mods {
		mods[i].Manifest = nil
	}
	writeJSON(w, http.StatusOK, struct {
		Modules []hotmod.ModuleInfo `json:"modules"`
	}{mods})
}

func (s *api) module(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var versions []hotmod.ModuleInfo
	names := map[string]bool{}
	for _, m := range s.reg.Modules() {
		if m.Name == name {
			versions = append(versions, m)
		} else if m.Name != "" {
			names[m.Name] = true
		}
	}
	if len(versions) == 0 {
		writeError(w, http.StatusNotFound, sdk.Errorf(sdk.CodeUnknownModule,
			"no module %q is loaded (loaded: %s); GET /v1/modules lists everything, failed artifacts included", name, list(names)))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Name     string              `json:"name"`
		Versions []hotmod.ModuleInfo `json:"versions"`
	}{name, versions})
}

func (s *api) capability(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	found, err := s.reg.Find(name, r.URL.Query().Get("range"))
	if err != nil {
		e := sdk.AsError(err)
		writeError(w, StatusOf(e.Code), e)
		return
	}
	for i := range found {
		found[i].Manifest = nil
	}
	if found == nil {
		found = []hotmod.ModuleInfo{}
	}
	writeJSON(w, http.StatusOK, struct {
		Capability string              `json:"capability"`
		Providers  []hotmod.ModuleInfo `json:"providers"`
	}{name, found})
}

// logRef gives a log line about a call its module and version attributes:
// the version is the one ref asks for ("" for the newest, or a range).
func logRef(ref, method string, more ...any) []any {
	module, version, _ := strings.Cut(ref, "@")
	return append([]any{"module", module, "version", version, "method", method}, more...)
}

func list(set map[string]bool) string {
	if len(set) == 0 {
		return "none"
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// readParams reads the request body as a params object. On failure it
// returns the status and error to answer with.
func readParams(w http.ResponseWriter, r *http.Request) (map[string]any, int, *sdk.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, sdk.Errorf(sdk.CodeBadParams,
				"the request body is larger than %d MiB: send smaller params (large data belongs in a file or store the module reads, not in a call)", MaxBody>>20)
		}
		return nil, http.StatusBadRequest, sdk.Errorf(sdk.CodeBadParams, "reading the request body: %v", err)
	}
	params, err := DecodeParams(body)
	if err != nil {
		return nil, http.StatusBadRequest, sdk.AsError(err)
	}
	return params, 0, nil
}

// StatusOf is the HTTP status the API answers with for an error code.
func StatusOf(c sdk.Code) int {
	switch c {
	case sdk.CodeUnknownModule, sdk.CodeUnknownMethod, CodeNotFound:
		return http.StatusNotFound
	case sdk.CodeBadParams:
		return http.StatusBadRequest
	case sdk.CodeNotActive, sdk.CodeOverloaded, sdk.CodeCircuitOpen:
		return http.StatusServiceUnavailable
	case sdk.CodeTimeout:
		return http.StatusGatewayTimeout
	case sdk.CodeIncompatible, sdk.CodeInUse:
		return http.StatusConflict
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError // panic, module_error, internal and anything new
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, &sdk.Error{Code: CodeMethodNotAllowed,
			Message: fmt.Sprintf("%s does not take %s: use %s", r.URL.Path, r.Method, allow)})
	}
}

func writeError(w http.ResponseWriter, status int, e *sdk.Error) {
	writeJSON(w, status, map[string]*sdk.Error{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own types get here; they always encode.
		status = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, `{"error":{"code":"internal","message":%q}}`+"\n", err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
