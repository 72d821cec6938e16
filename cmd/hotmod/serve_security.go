package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/connlimit"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/hotmod/hotmod/internal/statedir"
	"github.com/spf13/pflag"
)

// Defaults of the daemon's HTTP limits.
const (
	defaultReadTimeout   = 30 * time.Second // a request's headers and body, in all
	defaultHeaderTimeout = 10 * time.Second // a request's headers
	defaultIdleTimeout   = 2 * time.Minute  // a kept-alive connection between requests
	defaultMaxConns      = 1024             // open connections (plus connlimit.Reserve for health)
)

// securityFlags are serve's flags for who may use the API and how much of
// the daemon a client may hold.
type securityFlags struct {
	tlsCert, tlsKey, clientCA string
	insecure                  bool
	allowOrigins              []string
	readTimeout, hdrTimeout   time.Duration
	maxConns                  int
	bodyBudgetMiB             int
	unix                      string
}

func addSecurityFlags(fl *pflag.FlagSet) *securityFlags {
	f := &securityFlags{}
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	fl.StringVar(&f.clientCA, "client-ca", "", "require client certificates signed by this CA (PEM): mutual TLS; needs --tls-cert")
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP on an address other machines reach (tokens then cross the network in clear text)")
	fl.StringArrayVar(&f.allowOrigins, "allow-origin", nil, "let web pages on this origin (https://ops.example) use the API; repeatable (default: none, browsers are refused)")
	fl.DurationVar(&f.readTimeout, "read-timeout", defaultReadTimeout, "longest a client may take to send a whole request, body included")
	fl.DurationVar(&f.hdrTimeout, "header-timeout", defaultHeaderTimeout, "longest a client may take to send a request's headers")
	fl.IntVar(&f.maxConns, "max-conns", defaultMaxConns, fmt.Sprintf("open connections at most (%d more are kept for health checks)", connlimit.Reserve))
	fl.StringVar(&f.unix, "unix", "", "also listen on a Unix socket at this path, mode 0600: whoever may open it is admin, no token needed (the CLI: --addr unix:PATH)")
	fl.IntVar(&f.bodyBudgetMiB, "body-budget-mib", server.DefaultBodyBudget>>20, "MiB of request bodies all requests together may be reading at once; past it requests wait, then get 503")
	return f
}

// security is what the flags set up, before anything is loaded.
type security struct {
	f        *securityFlags
	tls      *tls.Config // nil: plain HTTP
	loopback bool
	tokens   *auth.Store
	admin    string // the local admin token
	logger   *slog.Logger
	unix     net.Listener // nil without --unix
}

// prepare checks the flags against the address to listen on and opens the
// token store in stateDir, creating the local admin token on first start.
// The supervisor runs it before it listens, so a refusal is immediate; the
// worker runs it again to serve with what it set up.
func (f *securityFlags) prepare(listen, stateDir string, logger *slog.Logger) (*security, error) {
	s := &security{f: f, logger: logger, loopback: loopbackListen(listen)}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, usagef("--tls-cert and --tls-key go together: give both, or neither")
	}
	if f.clientCA != "" && f.tlsCert == "" {
		return nil, usagef("--client-ca asks for client certificates, which only TLS carries: add --tls-cert and --tls-key")
	}
	if f.maxConns < 1 || f.bodyBudgetMiB < server.MaxBody>>20 || f.readTimeout <= 0 || f.hdrTimeout <= 0 {
		return nil, usagef("--max-conns must be at least 1, --body-budget-mib at least %d (one largest body), --read-timeout and --header-timeout above 0", server.MaxBody>>20)
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", f.tlsCert, f.tlsKey, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if f.clientCA != "" {
			pool, err := loadPool(f.clientCA)
			if err != nil {
				return nil, fmt.Errorf("--client-ca: %w", err)
			}
			s.tls.ClientCAs, s.tls.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	if !s.loopback && s.tls == nil {
		if !f.insecure {
			return nil, usagef("refusing to serve plain HTTP on %s, which other machines reach: tokens and calls would cross the network in clear text. Add --tls-cert FILE --tls-key FILE (and --client-ca FILE for client certificates), listen on 127.0.0.1, or add --insecure if something else encrypts the traffic", listen)
		}
		logger.Warn("INSECURE: serving plain HTTP on an address other machines reach; tokens and calls cross the network in clear text (--insecure)", "listen", listen)
	}
	sd, err := statedir.Open(stateDir)
	if err != nil {
		return nil, err
	}
	if s.tokens, err = auth.Open(sd); err != nil {
		return nil, err
	}
	admin, created, err := s.tokens.LocalAdmin()
	if err != nil {
		return nil, err
	}
	s.admin = admin
	if created {
		logger.Info("created the admin token", "file", sd.File(auth.AdminFile))
	}
	return s, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// loopbackListen reports whether a listen address is reached only from
// this machine: a loopback address or localhost. An empty host (":7700")
// listens everywhere.
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listen caps ln's connections and adds TLS; with --unix it listens on
// the Unix socket too (close closes it). A worker that replaces another
// (replace) takes the socket's path over from it: the old one serves the
// connections it has and accepts no more.
func (s *security) listen(ln net.Listener, replace bool) (net.Listener, error) {
	ln = connlimit.New(ln, s.f.maxConns)
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	if s.f.unix == "" {
		return ln, nil
	}
	path, err := filepath.Abs(s.f.unix)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--unix %s: the file exists and is not a socket: remove it or pick another path", path)
		}
		if c, err := net.Dial("unix", path); err == nil && !replace {
			c.Close()
			return nil, fmt.Errorf("--unix %s: another daemon listens on it: stop it or pick another path", path)
		}
		_ = os.Remove(path) // left by a daemon that did not stop cleanly
	}
	// The socket is created owner-only; no moment exists when others could
	// connect.
	old := syscall.Umask(0o177)
	uln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("--unix %s: %w", path, err)
	}
	s.unix = connlimit.New(uln, s.f.maxConns)
	return ln, nil
}

// serveUnix serves srv on the Unix socket, if there is one; srv.Shutdown
// closes it (and removes the file).
func (s *security) serveUnix(srv *http.Server, served chan<- error) {
	if s.unix == nil {
		return
	}
	go func() { served <- srv.Serve(s.unix) }()
	s.logger.Info("listening", "unix", s.unix.Addr().String(), "access", "whoever may open the socket is admin")
}

// unixAdmin is who a request on the Unix socket comes from: the socket's
// file mode is the access control.
var unixAdmin = &auth.Principal{Name: "unix-socket", Role: auth.RoleAdmin}

// options are the API's security options.
func (s *security) options() []server.Option {
	opts := []server.Option{server.WithAuth(s.tokens), server.WithAllowedOrigins(s.f.allowOrigins...),
		server.WithBodyBudget(int64(s.f.bodyBudgetMiB)<<20, server.DefaultBodyWait)}
	if s.loopback {
		opts = append(opts, server.WithLoopbackHosts())
	}
	return opts
}

// configure sets srv's timeouts.
func (s *security) configure(srv *http.Server) {
	srv.ReadTimeout, srv.ReadHeaderTimeout, srv.IdleTimeout = s.f.readTimeout, s.f.hdrTimeout, defaultIdleTimeout
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if c.LocalAddr().Network() == "unix" {
			ctx = auth.WithPrincipal(ctx, unixAdmin)
		}
		return connlimit.ConnContext(ctx, c)
	}
}

// scheme is the URL scheme served.
func (s *security) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// close closes the Unix socket.
func (s *security) close() {
	if s.unix != nil {
		_ = s.unix.Close()
	}
}

// publish writes the admin token where the CLI of this user finds it for
// addr; the returned function removes it.
func (s *security) publish(addr string) func() {
	path, remove, err := auth.PublishCredential(addr, s.admin)
	if err != nil {
		s.logger.Warn("the local hotmod CLI will need HOTMOD_TOKEN: "+err.Error(), "addr", addr)
		return func() {}
	}
	s.logger.Debug("published the admin token for local clients", "file", path)
	return remove
}
