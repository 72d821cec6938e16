package main

import (
	"bytes"
	"context"
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

	"github.com/hotmod/hotmod/sdk"
	"github.com/spf13/cobra"
)

const defaultAddr = "http://127.0.0.1:7700"

// client talks to a hotmod daemon's HTTP API.
type client struct {
	base string // "http://127.0.0.1:7700", no trailing slash
	http *http.Client
}

// addrFlag adds --addr to a client command.
func addrFlag(cmd *cobra.Command, addr *string) {
	cmd.Flags().StringVar(addr, "addr", "", "the daemon's address (default $HOTMOD_ADDR, else "+defaultAddr+")")
}

// newClient finds the daemon: --addr, else $HOTMOD_ADDR, else the default.
// "127.0.0.1:7700" is taken as "http://127.0.0.1:7700".
func newClient(flag string) (*client, error) {
	addr, from := flag, "--addr"
	if addr == "" {
		addr, from = os.Getenv("HOTMOD_ADDR"), "HOTMOD_ADDR"
	}
	if addr == "" {
		addr = defaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("%s %q is not a daemon address: use host:port or http://host:port, e.g. %s", from, addr, defaultAddr)
	}
	return &client{
		base: strings.TrimSuffix(u.String(), "/"),
		http: &http.Client{Transport: &http.Transport{
			Proxy:       http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		}},
	}, nil
}

// do sends a request and returns the answer's status and body. A daemon
// that cannot be reached is an error that says how to start one.
func (c *client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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
