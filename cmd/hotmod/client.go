package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/sdk"
	"github.com/spf13/cobra"
)

const defaultAddr = "http://127.0.0.1:7700"

// client talks to a hotmod daemon's HTTP API.
type client struct {
	base  string // "http://127.0.0.1:7700", no trailing slash
	token string // sent as a bearer token; "" sends none
	from  string // where the token came from, for error messages
	http  *http.Client
}

// clientFlags say which daemon to talk to and how.
type clientFlags struct {
	addr, token, ca, cert, key string
}

// addrFlag adds --addr and the credential flags to a client command.
func addrFlag(cmd *cobra.Command, f *clientFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "", "the daemon's address, or unix:PATH for its Unix socket (default $HOTMOD_ADDR, else "+defaultAddr+")")
	fl.StringVar(&f.token, "token", "", "the API token (default $HOTMOD_TOKEN, else the one a daemon at the address publishes for its own user)")
	fl.StringVar(&f.ca, "ca", "", "trust the daemon's certificate if this CA (PEM) signed it (default $HOTMOD_CA; else the system's CAs)")
	fl.StringVar(&f.cert, "cert", "", "client certificate (PEM) for a daemon that asks for one (default $HOTMOD_CERT)")
	fl.StringVar(&f.key, "key", "", "the private key of --cert (default $HOTMOD_KEY)")
}

// orEnv is flag, else the environment variable env.
func orEnv(flag, env string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(env)
}

// newClient finds the daemon: --addr, else $HOTMOD_ADDR, else the default.
// "127.0.0.1:7700" is taken as "http://127.0.0.1:7700". The token is
// --token, else $HOTMOD_TOKEN, else the one the daemon at that address
// published for the user running it.
func newClient(f clientFlags) (*client, error) {
	addr, from := f.addr, "--addr"
	if addr == "" {
		addr, from = os.Getenv("HOTMOD_ADDR"), "HOTMOD_ADDR"
	}
	if addr == "" {
		addr = defaultAddr
	}
	if socket, ok := strings.CutPrefix(addr, "unix:"); ok {
		return unixClient(strings.TrimPrefix(socket, "//"))
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("%s %q is not a daemon address: use host:port or http://host:port, e.g. %s", from, addr, defaultAddr)
	}
	tlsConf, err := clientTLS(orEnv(f.ca, "HOTMOD_CA"), orEnv(f.cert, "HOTMOD_CERT"), orEnv(f.key, "HOTMOD_KEY"))
	if err != nil {
		return nil, err
	}
	c := &client{
		base: strings.TrimSuffix(u.String(), "/"),
		http: &http.Client{Transport: &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSClientConfig: tlsConf,
		}},
	}
	c.token, c.from = f.token, "--token"
	if c.token == "" {
		c.token, c.from = os.Getenv("HOTMOD_TOKEN"), "HOTMOD_TOKEN"
	}
	if c.token == "" {
		c.from = "the token the daemon at " + u.Host + " published for this user"
		if c.token, err = auth.ReadCredential(hostPort(u)); err != nil {
			return nil, fmt.Errorf("reading %s: %w", c.from, err)
		}
	}
	return c, nil
}

// unixClient talks to a daemon's Unix socket (serve --unix), where the
// socket's permissions decide who may: no token is sent.
func unixClient(path string) (*client, error) {
	if path == "" {
		return nil, usagef("unix: needs the socket's path: --addr unix:/run/hotmod.sock")
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &client{
		base: "http://localhost",
		from: "the Unix socket " + path,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", path)
			},
		}},
	}, nil
}

// hostPort is u's host with its port, the scheme's default if it has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// clientTLS is the TLS set-up for a private CA and a client certificate;
// nil when neither is given.
func clientTLS(ca, cert, key string) (*tls.Config, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--ca/HOTMOD_CA: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usagef("--ca/HOTMOD_CA %s holds no PEM certificate", ca)
		}
	}
	if (cert == "") != (key == "") {
		return nil, usagef("--cert and --key (HOTMOD_CERT and HOTMOD_KEY) go together: give both, or neither")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// do sends a request and returns the answer's status and body. A daemon
// that cannot be reached is an error that says how to start one.
func (c *client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer of the hotmod daemon at %s: %w", c.base, err)
	}
	return resp.StatusCode, data, nil
}

func (c *client) unreachable(err error) error {
	const how = "start one with `hotmod serve`, or set --addr/HOTMOD_ADDR"
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no hotmod daemon at %s: %s", c.base, how)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("no hotmod daemon at %s (%v): %s", c.base, op.Err, how)
	}
	return fmt.Errorf("talking to the hotmod daemon at %s: %w", c.base, err)
}

// apiError turns a failed answer into the error it carries: an *sdk.Error
// when the body has the API's error shape.
func (c *client) apiError(status int, body []byte) error {
	var e struct {
		Error *sdk.Error `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != nil && e.Error.Code != "" {
		if status == http.StatusUnauthorized {
			if c.token == "" {
				return fmt.Errorf("%w\nno token: set HOTMOD_TOKEN or --token (on the daemon's machine, as the user running it, `hotmod token print --addr ADDR` shows the admin token)", e.Error)
			}
			return fmt.Errorf("%w\nthe token is from %s", e.Error, c.from)
		}
		return e.Error
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return fmt.Errorf("unexpected answer from %s (is it a hotmod daemon?): HTTP %d: %s", c.base, status, text)
}

// get fetches path and decodes a 200 answer into v; the raw body is returned
// too.
func (c *client) get(ctx context.Context, path string, v any) ([]byte, error) {
	status, body, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, c.apiError(status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("unexpected answer from %s%s (is it a hotmod daemon?): %v", c.base, path, err)
	}
	return body, nil
}

// showList is the body of a listing command: GET path, then print the
// answer as it is (--json) or as show writes the decoded T.
func showList[T any](cmd *cobra.Command, addr clientFlags, asJSON bool, path string, show func(io.Writer, T) error) error {
	c, ctx, cancel, err := commandClient(cmd, addr, requestTimeout)
	if err != nil {
		return err
	}
	defer cancel()
	var v T
	body, err := c.get(ctx, path, &v)
	if err != nil {
		return err
	}
	if asJSON {
		return writeIndented(cmd.OutOrStdout(), body)
	}
	return show(cmd.OutOrStdout(), v)
}

// writeIndented writes a JSON document indented, its number literals as
// they are.
func writeIndented(w io.Writer, doc []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(doc), "", "  "); err != nil {
		return fmt.Errorf("the daemon answered with malformed JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// requestTimeout bounds one request of a client command.
const requestTimeout = 30 * time.Second

// commandClient finds the daemon for a client command and bounds what the
// command does with it by timeout; call cancel when done.
func commandClient(cmd *cobra.Command, addr clientFlags, timeout time.Duration) (*client, context.Context, context.CancelFunc, error) {
	c, err := newClient(addr)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	return c, ctx, cancel, nil
}
