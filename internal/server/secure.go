package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hotmod/hotmod/internal/audit"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/connlimit"
	"github.com/hotmod/hotmod/sdk"
	"golang.org/x/sync/semaphore"
)

// Codes of requests refused before they reach an endpoint.
const (
	CodeUnauthorized     sdk.Code = "unauthorized"      // 401: no token, or not a valid one
	CodeForbidden        sdk.Code = "forbidden"         // 403: the token's role does not allow it, or a browser check failed
	CodeUnsupportedMedia sdk.Code = "unsupported_media" // 415: a POST body not declared application/json
)

// Defaults of the server's limits.
const (
	// DefaultBodyBudget is how many request-body bytes all requests
	// together may be reading (and holding, decoded) at once: 64 MiB.
	DefaultBodyBudget = 64 << 20
	// DefaultBodyWait is how long a request waits for its share of the
	// body budget before it is answered 503.
	DefaultBodyWait = 2 * time.Second
)

// Option configures the API. A server needs either WithAuth or, said
// explicitly, WithoutAuth: without one, every endpoint but the health
// checks answers 401.
type Option func(*config)

type config struct {
	tokens     *auth.Store
	noAuth     bool
	origins    []string
	loopback   bool
	bodyBudget int64
	bodyWait   time.Duration
	endpoints  []func(Handle, *slog.Logger)
}

// Handle registers an endpoint of the API with the role it needs (see
// WithEndpoints).
type Handle func(pattern string, role auth.Role, h http.HandlerFunc)

// WithEndpoints adds endpoints to the API: add registers each through
// handle, with the role it needs, so that they pass the same checks
// (tokens, browsers, body budget) as the API's own.
func WithEndpoints(add func(handle Handle, logger *slog.Logger)) Option {
	return func(c *config) { c.endpoints = append(c.endpoints, add) }
}

// WithAuth makes every endpoint but /healthz and /readyz need a bearer
// token of tokens with the endpoint's role, and serves token management
// (admin) from tokens.
func WithAuth(tokens *auth.Store) Option { return func(c *config) { c.tokens = tokens } }

// WithoutAuth serves every endpoint to anyone who can connect, as admin.
// Use it only where the listener itself is the access control.
func WithoutAuth() Option { return func(c *config) { c.noAuth = true } }

// WithAllowedOrigins lets browsers on these origins ("https://ops.example")
// use the API; a request with another Origin header is refused (403).
func WithAllowedOrigins(origins ...string) Option {
	return func(c *config) { c.origins = append(c.origins, origins...) }
}

// WithLoopbackHosts refuses (403) a request whose Host is not a loopback
// name or address: on a listener only this machine reaches, any other Host
// is a page that rebound its own name to 127.0.0.1 (DNS rebinding).
func WithLoopbackHosts() Option { return func(c *config) { c.loopback = true } }

// WithBodyBudget bounds the request-body bytes all requests together read
// and hold at once (each counts its Content-Length, or MaxBody when it does
// not say); a request that finds no room within wait is answered 503.
func WithBodyBudget(bytes int64, wait time.Duration) Option {
	return func(c *config) { c.bodyBudget, c.bodyWait = bytes, wait }
}

// secure wraps the route table h with the browser checks, the
// authentication and role check, and the body budget.
func (s *api) secure(mux *http.ServeMux, roles map[string]auth.Role, c config) http.Handler {
	budget := semaphore.NewWeighted(c.bodyBudget)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.loopback && !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, sdk.Errorf(CodeForbidden,
				"Host %q is not this machine: the API listens on a loopback address and answers only requests for localhost or a loopback address (a web page that rebinds its name to 127.0.0.1 is refused this way)", r.Host))
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			if !slices.Contains(c.origins, o) {
				writeError(w, http.StatusForbidden, sdk.Errorf(CodeForbidden,
					"requests from web pages on %s are refused: start the daemon with --allow-origin %s to allow them", o, o))
				return
			}
			// An allowed origin may read the answers (CORS), and its
			// preflight, which carries no token, is answered here.
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
				w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if r.Method == http.MethodPost && !jsonBody(r) {
			writeError(w, http.StatusUnsupportedMediaType, sdk.Errorf(CodeUnsupportedMedia,
				"a POST body must be JSON declared as such: send the header Content-Type: application/json (got %q)", r.Header.Get("Content-Type")))
			return
		}
		_, pattern := mux.Handler(r)
		r.Pattern = pattern // as the mux would, for wrappers that name spans or metrics by route
		need, known := roles[pattern]
		if !known {
			need = auth.RoleAdmin // an endpoint that did not say
		}
		ctx := r.Context()
		if need != auth.RoleNone && connlimit.Reserved(ctx) {
			refuseReserved(w)
			return
		}
		switch p := auth.FromContext(ctx); {
		case need == auth.RoleNone:
		case p != nil:
			// Set by the connection (http.Server.ConnContext): a listener
			// whose access control is its own, like a Unix socket.
			if !p.May(need) {
				writeError(w, http.StatusForbidden, sdk.Errorf(CodeForbidden, "%s has the role %v; %s %s needs %v", p.Name, p.Role, r.Method, r.URL.Path, need))
				return
			}
			ctx = audit.WithActor(ctx, p.Name)
		case c.noAuth:
			ctx = audit.WithActor(ctx, "anonymous")
		case c.tokens == nil:
			writeError(w, http.StatusUnauthorized, sdk.Errorf(CodeUnauthorized,
				"this server has no token store: the program serving it must pass server.WithAuth (or, where the listener is the access control, server.WithoutAuth)"))
			return
		default:
			p, err := c.tokens.Check(auth.Bearer(r.Header.Get("Authorization")))
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hotmod"`)
				msg := "%s needs a token: send the header Authorization: Bearer TOKEN (on the daemon's machine `hotmod token print` shows the local admin token; `hotmod token create` makes others)"
				if err != auth.ErrNoToken {
					msg = "%s: the token is unknown or revoked: get a valid one from the daemon's admin (`hotmod token create`)"
				}
				writeError(w, http.StatusUnauthorized, sdk.Errorf(CodeUnauthorized, msg, r.URL.Path))
				return
			}
			if !p.May(need) {
				writeError(w, http.StatusForbidden, sdk.Errorf(CodeForbidden,
					"token %q has the role %v; %s %s needs %v", p.Name, p.Role, r.Method, r.URL.Path, need))
				return
			}
			ctx = audit.WithActor(auth.WithPrincipal(ctx, p), p.Name)
		}
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			n := r.ContentLength
			if n < 0 || n > MaxBody {
				n = MaxBody
			}
			wait, cancel := context.WithTimeout(ctx, c.bodyWait)
			err := budget.Acquire(wait, n)
			cancel()
			if err != nil {
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusServiceUnavailable, sdk.Errorf(sdk.CodeOverloaded,
					"the server is reading as many request bodies as it may (%d MiB in all): try again shortly", c.bodyBudget>>20))
				return
			}
			defer budget.Release(n)
		}
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
}

// jsonBody reports whether a POST declares a JSON body; an empty body
// needs no declaration.
func jsonBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// loopbackHost reports whether host (a Host header, with or without a
// port) names this machine: localhost, a name under .localhost, or a
// loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mayInvoke answers 403 and reports false when the request's token may not
// call module (a reference: "greeter@^1.2").
func mayInvoke(w http.ResponseWriter, r *http.Request, ref string) bool {
	p := auth.FromContext(r.Context())
	name, _, _ := strings.Cut(ref, "@")
	if p == nil || p.MayInvoke(name) {
		return true
	}
	writeError(w, http.StatusForbidden, sdk.Errorf(CodeForbidden,
		"token %q may call only %s, not %s", p.Name, strings.Join(p.Modules, ", "), name))
	return false
}

// auditf logs an admin action of the request's actor.
func (s *api) audit(r *http.Request, action string, attrs ...slog.Attr) {
	audit.Log(r.Context(), s.logger, action, attrs...)
}

// refuseReserved answers 503 on a reserve connection, one that may only ask
// for health, and closes it at once, so the place is free for the next
// health check (http.Server would keep a connection whose body was not
// read open a while longer).
func refuseReserved(w http.ResponseWriter) {
	const msg = `{"error":{"code":"overloaded","message":"the server has as many connections open as it may: try again shortly (health checks are still answered)"}}` + "\n"
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, msg)
		return
	}
	defer conn.Close()
	_, _ = fmt.Fprintf(buf, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
	_ = buf.Flush()
}
