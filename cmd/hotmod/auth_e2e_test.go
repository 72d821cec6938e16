package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// pythonModule copies the Python example (a process module that needs no
// build) into dir.
func pythonModule(t *testing.T, dir string) {
	t.Helper()
	py := filepath.Join(plugintest.Repo(t), "examples", "python")
	for _, f := range []string{"textstats.py", "textstats.process.json"} {
		data, err := os.ReadFile(filepath.Join(py, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// status sends a request and returns the status and body.
func (d *daemon) status(t *testing.T, method, path, body string, header ...string) (int, string) {
	t.Helper()
	resp, err := d.request(t, method, path, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuth drives authentication with the real daemon: what needs a token,
// what each role may do, a token limited to one module, revocation, the
// browser checks, and the audit records of token changes.
func TestAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	dir := t.TempDir()
	pythonModule(t, dir)
	d := startDaemon(t, dir, "--allow-command", "python3")
	addr := []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "textstats active", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("textstats", "1.0.0")) != nil
	})
	if fi, err := os.Stat(filepath.Join(dir, ".hotmod", auth.AdminFile)); err != nil {
		t.Errorf("the admin token file: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("the admin token file has mode %v, want 0600", fi.Mode().Perm())
	}
	const invoke = "/v1/invoke/textstats/count_words"
	const params = `{"text":"to be or not"}`

	t.Run("no token", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{"POST", invoke, params}, {"GET", "/v1/modules", ""}, {"GET", "/v1/modules/textstats", ""},
			{"GET", "/v1/tokens", ""}, {"GET", "/nothing", ""},
		} {
			if code, body := d.status(t, c.method, c.path, c.body, "Authorization", ""); code != 401 || !strings.Contains(body, `"unauthorized"`) {
				t.Errorf("%s %s without a token: %d %s", c.method, c.path, code, body)
			}
		}
		if code, _ := d.status(t, "POST", invoke, params, "Authorization", "Bearer hm_forged"); code != 401 {
			t.Errorf("a forged token: %d", code)
		}
		if code, body := d.status(t, "GET", "/healthz", "", "Authorization", ""); code != 200 {
			t.Errorf("/healthz without a token: %d %s", code, body)
		}
		r := hotmodRun(t, append(addr, "XDG_CONFIG_HOME="+t.TempDir()), "", "ls")
		if r.code != 1 || !strings.Contains(r.stderr, "unauthorized") || !strings.Contains(r.stderr, "set HOTMOD_TOKEN or --token") {
			t.Errorf("hotmod ls with no token to find: %s", r)
		}
	})

	// The local CLI finds the admin token the daemon published.
	if r := mustRun(t, addr, "invoke", "textstats", "count_words", params); !strings.Contains(r.stdout, `"words": 4`) {
		t.Errorf("hotmod invoke with the published token: %s", r)
	}
	create := func(args ...string) string {
		t.Helper()
		r := mustRun(t, addr, append([]string{"token", "create"}, args...)...)
		tok := strings.TrimSpace(r.stdout)
		if !strings.HasPrefix(tok, "hm_") {
			t.Fatalf("hotmod token create printed %q", r.stdout)
		}
		return tok
	}
	reader := create("--role", "read", "--name", "dashboard")
	shop := create("--role", "invoke", "--modules", "textstats", "--name", "shop")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	t.Run("roles", func(t *testing.T) {
		if code, _ := d.status(t, "GET", "/v1/modules", "", bearer(reader)...); code != 200 {
			t.Errorf("a read token listing: %d", code)
		}
		if code, body := d.status(t, "POST", invoke, params, bearer(reader)...); code != 403 || !strings.Contains(body, `has the role read`) {
			t.Errorf("a read token invoking: %d %s", code, body)
		}
		if code, body := d.status(t, "POST", invoke, params, bearer(shop)...); code != 200 || !strings.Contains(body, `"words":4`) {
			t.Errorf("an invoke token for textstats invoking it: %d %s", code, body)
		}
		if code, body := d.status(t, "POST", "/v1/invoke/greeter/hello", `{}`, bearer(shop)...); code != 403 || !strings.Contains(body, "may call only textstats") {
			t.Errorf("an invoke token for textstats calling greeter: %d %s", code, body)
		}
		if code, _ := d.status(t, "GET", "/v1/tokens", "", bearer(shop)...); code != 403 {
			t.Errorf("an invoke token listing tokens: %d", code)
		}
		r := hotmodRun(t, append(addr, "HOTMOD_TOKEN="+reader), "", "token", "create", "--role", "admin")
		if r.code != 1 || !strings.Contains(r.stderr, "forbidden") {
			t.Errorf("a read token making an admin token: %s", r)
		}
		r = mustRun(t, addr, "token", "ls")
		for _, want := range []string{"local-admin  admin", "dashboard    read", "shop         invoke  textstats"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("hotmod token ls lacks %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "hm_") {
			t.Errorf("hotmod token ls shows a secret:\n%s", r.stdout)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		mustRun(t, addr, "token", "revoke", "shop")
		if code, _ := d.status(t, "POST", invoke, params, bearer(shop)...); code != 401 {
			t.Errorf("a revoked token: %d", code)
		}
		if r := hotmodRun(t, addr, "", "token", "revoke", "shop"); r.code != 1 || !strings.Contains(r.stderr, "no token of that name") {
			t.Errorf("revoking twice: %s", r)
		}
		stored, _ := os.ReadFile(filepath.Join(dir, ".hotmod", auth.File))
		if strings.Contains(string(stored), reader) || strings.Contains(string(stored), "hm_") {
			t.Errorf("the token list holds a secret:\n%s", stored)
		}
	})

	t.Run("browsers", func(t *testing.T) {
		// What a page on another site can send without a preflight.
		if code, body := d.status(t, "POST", invoke, params, "Content-Type", "text/plain"); code != 415 || !strings.Contains(body, "Content-Type: application/json") {
			t.Errorf("a text/plain POST: %d %s", code, body)
		}
		if code, body := d.status(t, "GET", "/v1/modules", "", "Origin", "https://evil.example"); code != 403 || !strings.Contains(body, "--allow-origin https://evil.example") {
			t.Errorf("a foreign Origin: %d %s", code, body)
		}
		_, port, _ := net.SplitHostPort(d.addr)
		if code, body := d.status(t, "GET", "/v1/modules", "", "Host", "rebind.evil.example:"+port); code != 403 || !strings.Contains(body, "not this machine") {
			t.Errorf("a rebound Host: %d %s", code, body)
		}
		if code, _ := d.status(t, "GET", "/v1/modules", "", "Host", "localhost:"+port); code != 200 {
			t.Errorf("Host localhost: %d", code)
		}
	})

	// A file the host refuses, and one that goes: changes the directory made.
	if err := os.WriteFile(filepath.Join(dir, "junk.wasm"), []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitModules(t, "junk.wasm refused", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, func(m hotmod.ModuleInfo) bool { return m.State == hotmod.StateFailed }) != nil
	})
	os.Remove(filepath.Join(dir, "textstats.process.json"))
	d.waitModules(t, "textstats unloaded", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("textstats", "1.0.0")) == nil
	})
	d.logged(`"action":"unload"`, 10*time.Second)

	d.stop(t, syscall.SIGTERM)
	var audits []string
	for _, line := range strings.Split(d.log(), "\n") {
		var rec struct{ Msg, Action, Actor, Token, Module, Artifact string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "audit" {
			audits = append(audits, strings.Join(strings.Fields(rec.Actor+" "+rec.Action+" "+rec.Token+rec.Module+" "+strings.TrimPrefix(filepath.Base(rec.Artifact), ".")), " "))
		}
	}
	want := []string{"directory load textstats textstats.process.json",
		"local-admin token create dashboard", "local-admin token create shop", "local-admin token revoke shop",
		"directory refuse junk.wasm", "directory unload textstats textstats.process.json"}
	if strings.Join(audits, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit records:\n%s\nwant\n%s", strings.Join(audits, "\n"), strings.Join(want, "\n"))
	}
	if tok, _ := auth.ReadCredential(d.addr); tok != "" {
		t.Errorf("the published admin token is still there after a clean stop")
	}
}

// TestServeRefusesPlainHTTPOnTheNetwork: an address other machines reach
// needs TLS, or an explicit --insecure; the refusal comes before anything
// is loaded.
func TestServeRefusesPlainHTTPOnTheNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	dir := t.TempDir()
	start := time.Now()
	r := hotmodRun(t, nil, "", "serve", "--dir", dir, "--listen", "0.0.0.0:0")
	if r.code != 2 || !strings.Contains(r.stderr, "--tls-cert FILE --tls-key FILE") || !strings.Contains(r.stderr, "--insecure") {
		t.Errorf("plain HTTP on 0.0.0.0: %s", r)
	}
	if strings.Contains(r.stderr, "watching") || time.Since(start) > 10*time.Second {
		t.Errorf("the refusal came after loading (%v): %s", time.Since(start), r)
	}
	d := startDaemon(t, dir, "--listen", "0.0.0.0:0", "--insecure")
	if !d.logged("INSECURE", 10*time.Second) {
		t.Errorf("--insecure did not warn:\n%s", d.log())
	}
}

// TestMutualTLS serves HTTPS that requires a client certificate, with
// certificates made here: the CLI with one gets in, a client without one
// does not.
func TestMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	pki := t.TempDir()
	ca, caKey := newCert(t, pki, "ca", nil, nil)
	newCert(t, pki, "server", ca, caKey)
	newCert(t, pki, "client", ca, caKey)
	f := func(name string) string { return filepath.Join(pki, name) }
	// launchDaemon: /readyz, like every endpoint, wants a client certificate
	// here; the directory is empty, so there is nothing to wait for.
	d := launchDaemon(t, t.TempDir(), "--tls-cert", f("server.pem"), "--tls-key", f("server.key"), "--client-ca", f("ca.pem"))
	url := "https://" + d.addr

	r := mustRun(t, nil, "ls", "--addr", url, "--ca", f("ca.pem"), "--cert", f("client.pem"), "--key", f("client.key"))
	if !strings.Contains(r.stdout, "no modules loaded") {
		t.Errorf("hotmod ls over mutual TLS: %s", r)
	}
	r = mustRun(t, []string{"HOTMOD_ADDR=" + url, "HOTMOD_CA=" + f("ca.pem"), "HOTMOD_CERT=" + f("client.pem"), "HOTMOD_KEY=" + f("client.key")}, "ls")
	if !strings.Contains(r.stdout, "no modules loaded") {
		t.Errorf("hotmod ls over mutual TLS, set up by the environment: %s", r)
	}
	if r := hotmodRun(t, nil, "", "ls", "--addr", url, "--ca", f("ca.pem")); r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("hotmod ls without a client certificate: %s", r)
	}
	if r := hotmodRun(t, nil, "", "ls", "--addr", url); r.code != 1 || !strings.Contains(r.stderr, "certificate signed by unknown authority") {
		t.Errorf("hotmod ls not trusting the CA: %s", r)
	}
	if r := hotmodRun(t, nil, "", "ls", "--addr", "http://"+d.addr); r.code != 1 {
		t.Errorf("plain HTTP to a TLS daemon: %s", r)
	}
	// Health checks need no token, but still a client certificate.
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := noCert.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("/healthz without a client certificate answered %d", resp.StatusCode)
	}
	pair, err := tls.LoadX509KeyPair(f("client.pem"), f("client.key"))
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	resp, err := withCert.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz with a client certificate: %v %v", resp, err)
	}
	if err == nil {
		resp.Body.Close()
	}
}

// newCert writes name.pem and name.key into dir: a CA when parent is nil,
// else a certificate for 127.0.0.1 signed by parent, good for servers and
// clients.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "hotmod test " + name},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDER)
	return cert, key
}

// TestUnixSocket: on the Unix socket the file's permissions are the access
// control: the CLI needs no token there and acts as admin.
func TestUnixSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	sock := filepath.Join(t.TempDir(), "hotmod.sock")
	d := startDaemon(t, t.TempDir(), "--unix", sock)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("the socket: %v", err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the socket has mode %v, want a socket with 0600", fi.Mode())
	}
	noToken := []string{"XDG_CONFIG_HOME=" + t.TempDir()}
	if r := mustRun(t, noToken, "ls", "--addr", "unix:"+sock); !strings.Contains(r.stdout, "no modules loaded") {
		t.Errorf("hotmod ls on the socket: %s", r)
	}
	if r := mustRun(t, noToken, "token", "create", "--role", "read", "--name", "viewer", "--addr", "unix:"+sock); !strings.HasPrefix(r.stdout, "hm_") {
		t.Errorf("hotmod token create on the socket: %s", r)
	}
	if r := hotmodRun(t, noToken, "", "ls", "--addr", d.addr); r.code != 1 {
		t.Errorf("hotmod ls over TCP without a token: %s", r)
	}
	d.stop(t, syscall.SIGTERM)
	if !strings.Contains(d.log(), `"action":"token create","actor":"unix-socket"`) {
		t.Errorf("no audit record of the token made on the socket")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after a clean stop: %v", err)
	}
}
