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
//	GET  /v1/rollouts                   {"rollouts": [RolloutStatus…]}: where each module's
//	                                    plain calls go, the canary's step and health, what next
//	GET  /v1/rollouts/{module}          one RolloutStatus
//	POST /v1/modules/{module}/promote   the canary's next step (or 100 %); answers its RolloutStatus
//	POST /v1/modules/{module}/rollback  every plain call back to the version before, at once
//	POST /v1/modules/{module}@{version}/pin   plain calls go to that version until unpin
//	POST /v1/modules/{module}/unpin
//	DELETE /v1/modules/{module}@{version}     drain and unload that version ({module}: all of them)
//	GET  /v1/tokens                     {"tokens": [token…]}: name, role, modules, created (admin)
//	POST /v1/tokens                     {"role": "invoke", "modules": ["a"], "name": "ci"} →
//	                                    the token made, secret included, shown once (admin)
//	DELETE /v1/tokens/{name}            revokes a token (admin)
//	GET  /v1/events                     lifecycle and rollout events as they happen, as
//	                                    Server-Sent Events (see events.go; read)
//	GET  /healthz                       {"status": "ok"} (no token needed)
//
// # Who may do what
//
// Every endpoint but /healthz needs "Authorization: Bearer TOKEN" with a
// token whose role allows it: read for lists, invoke for calls (an invoke
// token may be limited to some modules), admin for tokens and everything
// that changes what runs. No token or a bad one is answered 401
// (unauthorized), a weak one 403 (forbidden). Browsers are kept out: a
// request with an Origin header not allowed is answered 403, a POST whose
// body is not declared application/json 415 (unsupported_media), and on a
// loopback listener a Host header that does not name this machine 403. An
// allowed origin (WithAllowedOrigins) gets CORS headers, and its preflight
// (OPTIONS, no token) is answered 204.
//
// A call may carry a routing key in the header Hotmod-Key: during a canary
// every call with the same key reaches the same version.
//
// More routes (GET /metrics, say) are given to New by the program, with
// the role each needs (WithEndpoints).
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
	"github.com/hotmod/hotmod/internal/auth"
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
const endpoints = "POST /v1/invoke/{module}/{method}, GET /v1/modules, GET /v1/modules/{name}, GET /v1/capabilities/{name}, GET /v1/rollouts, GET /v1/rollouts/{module}, POST /v1/modules/{module}/promote|rollback|pin|unpin, DELETE /v1/modules/{module}@{version}, GET|POST /v1/tokens, DELETE /v1/tokens/{name}, GET /readyz, POST /v1/recycle, GET /v1/quarantine, POST /v1/quarantine/lift, GET /v1/events, GET /healthz"

// KeyHeader carries a call's routing key: during a canary, calls with the
// same key reach the same version.
const KeyHeader = "Hotmod-Key"

// New returns the API's handler for reg. It logs to logger (nil means
// slog.Default()): calls that fail inside hotmod (code internal) as errors,
// admin actions as audit records, and every request at debug level.
//
// Every endpoint declares the role it needs (an endpoint that does not
// needs admin); opts must include WithAuth, or explicitly WithoutAuth.
func New(reg *hotmod.Registry, logger *slog.Logger, opts ...Option) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	c := config{bodyBudget: DefaultBodyBudget, bodyWait: DefaultBodyWait}
	for _, o := range opts {
		o(&c)
	}
	s := &api{reg: reg, logger: logger, tokens: c.tokens}
	mux := http.NewServeMux()
	roles := map[string]auth.Role{}
	handle := func(pattern string, role auth.Role, h http.HandlerFunc) {
		roles[pattern] = role
		mux.HandleFunc(pattern, h)
	}
	handle("POST /v1/invoke/{module}/{method}", auth.RoleInvoke, s.invoke)
	handle("/v1/invoke/{module}/{method}", auth.RoleRead, methodNotAllowed("POST"))
	handle("GET /v1/modules", auth.RoleRead, s.list)
	handle("/v1/modules", auth.RoleRead, methodNotAllowed("GET"))
	handle("GET /v1/modules/{name}", auth.RoleRead, s.module)
	handle("DELETE /v1/modules/{name}", auth.RoleAdmin, s.unload)
	handle("/v1/modules/{name}", auth.RoleRead, methodNotAllowed("GET, DELETE"))
	handle("GET /v1/rollouts", auth.RoleRead, s.rollouts)
	handle("/v1/rollouts", auth.RoleRead, methodNotAllowed("GET"))
	handle("GET /v1/rollouts/{module}", auth.RoleRead, s.rollout)
	handle("/v1/rollouts/{module}", auth.RoleRead, methodNotAllowed("GET"))
	for _, op := range []string{"promote", "rollback", "pin", "unpin"} {
		handle("POST /v1/modules/{name}/"+op, auth.RoleAdmin, s.routeChange(op))
		handle("/v1/modules/{name}/"+op, auth.RoleRead, methodNotAllowed("POST"))
	}
	handle("GET /v1/capabilities/{name}", auth.RoleRead, s.capability)
	handle("/v1/capabilities/{name}", auth.RoleRead, methodNotAllowed("GET"))
	handle("GET /v1/tokens", auth.RoleAdmin, s.listTokens)
	handle("POST /v1/tokens", auth.RoleAdmin, s.createToken)
	handle("/v1/tokens", auth.RoleAdmin, methodNotAllowed("GET, POST"))
	handle("DELETE /v1/tokens/{name}", auth.RoleAdmin, s.revokeToken)
	handle("/v1/tokens/{name}", auth.RoleAdmin, methodNotAllowed("DELETE"))
	handle("GET /v1/events", auth.RoleRead, s.events)
	handle("/v1/events", auth.RoleRead, methodNotAllowed("GET"))
	handle("GET /healthz", auth.RoleNone, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	handle("/healthz", auth.RoleNone, methodNotAllowed("GET"))
	for _, add := range c.endpoints {
		add(handle, logger)
	}
	handle("/", auth.RoleRead, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, &sdk.Error{Code: CodeNotFound,
			Message: fmt.Sprintf("no endpoint %s %s: the API has %s", r.Method, r.URL.Path, endpoints)})
	})
	return accessLog(s.secure(mux, roles, c), logger)
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
	tokens *auth.Store // nil without auth
}

func (s *api) invoke(w http.ResponseWriter, r *http.Request) {
	ref, method := r.PathValue("module"), r.PathValue("method")
	if !mayInvoke(w, r, ref) {
		return
	}
	params, status, perr := readParams(w, r)
	if perr != nil {
		writeError(w, status, perr)
		return
	}
	ctx := r.Context()
	if key := r.Header.Get(KeyHeader); key != "" {
		ctx = hotmod.WithKey(ctx, key)
	}
	out, err := s.reg.Invoke(ctx, ref, method, params)
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
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxBody), r.ContentLength)
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

// readBody reads a body of the declared length into one buffer of that
// size (io.ReadAll would grow one by doubling, holding up to twice the
// body while it reads); a body of unknown length is read as ReadAll does.
func readBody(r io.Reader, length int64) ([]byte, error) {
	if length <= 0 || length > MaxBody {
		return io.ReadAll(r)
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("the body ended after fewer bytes than its Content-Length (%d)", length)
		}
		return nil, err
	}
	return buf, nil
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
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
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

func (s *api) rollouts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Rollouts []hotmod.RolloutStatus `json:"rollouts"`
	}{s.reg.Rollouts()})
}

func (s *api) rollout(w http.ResponseWriter, r *http.Request) {
	st, err := s.reg.RolloutOf(r.PathValue("module"))
	s.answer(w, st, err)
}

// routeChange answers POST /v1/modules/{name}/op: promote, rollback, pin
// ({name} is module@version) or unpin, with the module's RolloutStatus.
func (s *api) routeChange(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref := r.PathValue("name")
		module, _, _ := strings.Cut(ref, "@")
		var err error
		switch op {
		case "promote":
			_, err = s.reg.Promote(r.Context(), module)
		case "rollback":
			_, err = s.reg.Rollback(r.Context(), module)
		case "pin":
			err = s.reg.Pin(r.Context(), ref)
		case "unpin":
			err = s.reg.Unpin(r.Context(), module)
		}
		if err != nil {
			s.answer(w, nil, err)
			return
		}
		s.audit(r, op, slog.String("ref", ref), slog.String("remote", r.RemoteAddr))
		st, err := s.reg.RolloutOf(module)
		s.answer(w, st, err)
	}
}

func (s *api) unload(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("name")
	err := s.reg.Unload(r.Context(), ref)
	if err == nil {
		s.audit(r, "unload", slog.String("ref", ref), slog.String("remote", r.RemoteAddr))
	}
	s.answer(w, map[string]string{"unloaded": ref}, err)
}

// answer writes v, or err with its status.
func (s *api) answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		e := sdk.AsError(err)
		writeError(w, StatusOf(e.Code), e)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
