package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/internal/signing"
)

// initFileModule is a native module whose package initialisation creates a
// file: loading it, even in the probe child, leaves a trace.
const initFileModule = `package main

import (
	"context"
	"os"

	"github.com/hotmod/hotmod/sdk"
)

func init() { _ = os.WriteFile(%q, []byte("init ran"), 0o644) }

var Module = sdk.New("initfile", "1.0.0").Handle("hello", hello)

func hello(context.Context, map[string]any) (map[string]any, error) { return map[string]any{}, nil }

func main() { sdk.Main(Module) }
`

// TestServeTrust runs `hotmod serve --trust` on artifacts signed with
// `hotmod keygen`, `hotmod sign` and `hotmod build --sign`: signed ones load
// (by either of two trusted keys), and unsigned, untrusted, tampered and
// mis-named ones are refused before any of their code runs — a native
// plugin's init and a process script would each create a file, and neither
// does until it is signed.
func TestServeTrust(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and two native plugins)")
	}
	work := t.TempDir()
	plugins := filepath.Join(work, "plugins")
	staging := filepath.Join(work, "staging")
	for _, d := range []string{plugins, staging} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	keys := map[string]string{} // name → key id
	for _, k := range []string{"a", "b", "c"} {
		base := filepath.Join(work, k)
		r := mustRun(t, nil, "keygen", base)
		pub, err := signing.ParsePublicKey(base + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		keys[k] = signing.KeyID(pub.ID())
		if !strings.Contains(r.stdout, keys[k]) || !strings.Contains(r.stdout, pub.String()) {
			t.Errorf("hotmod keygen did not print the key id and public key:\n%s", r.stdout)
		}
		if fi, err := os.Stat(base + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("secret key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
		}
	}
	key := func(k string) string { return filepath.Join(work, k+".key") }
	pub := func(k string) string { return filepath.Join(work, k+".pub") }

	d := startDaemon(t, plugins, "--trust", pub("a"), "--trust", pub("b"), "--allow-command", "python3")
	failed := func(name, reason string) func([]hotmod.ModuleInfo) bool {
		return func(mods []hotmod.ModuleInfo) bool {
			m := find(mods, func(m hotmod.ModuleInfo) bool { return filepath.Base(m.Artifact) == name })
			return m != nil && m.State == hotmod.StateFailed && strings.Contains(m.Reason, reason)
		}
	}

	// build --sign puts the signature in first: the daemon loads the
	// artifact without ever refusing it.
	r := mustRun(t, nil, "build", "--sign", key("a"), "-o", plugins, plugintest.Example(t, "greeter"))
	if !strings.Contains(r.stderr, "signed greeter@1.0.0 with key "+keys["a"]) {
		t.Errorf("hotmod build --sign: %s", r)
	}
	greeter := strings.TrimSpace(r.stdout)
	d.waitModules(t, "greeter, signed by a, active", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("greeter", "1.0.0")) != nil
	})
	mustRun(t, []string{"HOTMOD_ADDR=" + d.addr}, "invoke", "greeter", "hello", `{"name":"Ada"}`)
	if n := refusals(t, d, greeter); n != 0 {
		t.Errorf("greeter.so was refused %d times on its way in; the signature must arrive with it", n)
	}
	if r := mustRun(t, nil, "verify", greeter, "--trust", pub("b"), "--trust", pub("a")); !strings.Contains(r.stdout, "signed by key "+keys["a"]+" as greeter@1.0.0") {
		t.Errorf("hotmod verify: %s", r)
	}
	if r := hotmodRun(t, nil, "", "verify", greeter, "--trust", pub("b")); r.code != 1 || !strings.Contains(r.stderr, "signed by key "+keys["a"]+", which is not trusted") {
		t.Errorf("hotmod verify with the wrong key: %s", r)
	}

	// Code that would leave a trace if it ran.
	nativeMark := filepath.Join(work, "native-init-ran")
	script := func(mark string) string { return "#!/bin/sh\necho ran > " + mark + "\n" }
	scriptMark := filepath.Join(work, "script-ran")
	wrongMark := filepath.Join(work, "wrong-key-ran")
	tamperMark := filepath.Join(work, "tampered-ran")

	initSrc := plugintest.Source(t, fmt.Sprintf(initFileModule, nativeMark))
	// -o FILE: build reads no manifest, so the module's code does not run
	// here either.
	initFile := strings.TrimSpace(mustRun(t, nil, "build", "-o", filepath.Join(staging, "initfile.so"), initSrc).stdout)
	if err := os.Rename(initFile, filepath.Join(plugins, "initfile.so")); err != nil {
		t.Fatal(err)
	}
	publishBytes(t, []byte(script(scriptMark)), filepath.Join(plugins, "evil.process"))

	writeFile(t, filepath.Join(staging, "wrong.process"), script(wrongMark))
	mustRun(t, nil, "sign", "--key", key("c"), "--module", "wrong", "--version", "1.0.0", filepath.Join(staging, "wrong.process"))
	publish(t, filepath.Join(staging, "wrong.process.sig"), plugins)
	publish(t, filepath.Join(staging, "wrong.process"), plugins)

	writeFile(t, filepath.Join(staging, "tampered.process"), "#!/bin/sh\nexit 0\n")
	mustRun(t, nil, "sign", "--key", key("a"), "--module", "tampered", "--version", "1.0.0", filepath.Join(staging, "tampered.process"))
	publish(t, filepath.Join(staging, "tampered.process.sig"), plugins)
	publishBytes(t, []byte(script(tamperMark)), filepath.Join(plugins, "tampered.process"))

	// Signed by a trusted key, for another module than the one it holds.
	data, err := os.ReadFile(greeter)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(staging, "pricing.so"), string(data))
	mustRun(t, nil, "sign", "--key", key("a"), "--module", "pricing", "--version", "1.0.0", filepath.Join(staging, "pricing.so"))
	publish(t, filepath.Join(staging, "pricing.so.sig"), plugins)
	publish(t, filepath.Join(staging, "pricing.so"), plugins)

	for _, c := range []struct{ file, reason string }{
		{"initfile.so", "no signature file initfile.so.sig: sign it with hotmod sign"},
		{"evil.process", "no signature file evil.process.sig: sign it with hotmod sign"},
		{"wrong.process", "signed by key " + keys["c"] + ", which is not trusted"},
		{"tampered.process", "do not match the signature in tampered.process.sig by key " + keys["a"]},
		{"pricing.so", "signed as pricing@1.0.0 (key " + keys["a"] + ") but its manifest says greeter@1.0.0"},
	} {
		d.waitModules(t, c.file+" refused: "+c.reason, failed(c.file, c.reason))
	}
	// The greeter it claimed to be is untouched.
	mustRun(t, []string{"HOTMOD_ADDR=" + d.addr}, "invoke", "greeter", "hello", `{"name":"Ada"}`)
	time.Sleep(200 * time.Millisecond) // anything started would have written by now
	for _, m := range []string{nativeMark, scriptMark, wrongMark, tamperMark} {
		if _, err := os.Stat(m); err == nil {
			t.Errorf("%s exists: code of a refused artifact ran", m)
		}
	}
	for _, f := range []string{"initfile.so", "evil.process", "wrong.process", "tampered.process", "pricing.so"} {
		if n := refusals(t, d, filepath.Join(plugins, f)); n != 1 {
			t.Errorf("%s: logged %d refusals, want 1", f, n)
		}
	}

	// The same code, once signed, does run: the refusal is what stopped it.
	mustRun(t, nil, "sign", "--key", key("b"), "--module", "initfile", "--version", "1.0.0", filepath.Join(plugins, "initfile.so"))
	d.waitModules(t, "initfile, now signed by b, active", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("initfile", "1.0.0")) != nil
	})
	if _, err := os.Stat(nativeMark); err != nil {
		t.Errorf("initfile loaded, but its init left no file: %v", err)
	}
	mustRun(t, nil, "sign", "--key", key("a"), "--module", "evil", "--version", "1.0.0", filepath.Join(plugins, "evil.process"))
	waitFile(t, scriptMark)

	// A launch file and its script, dropped in unsigned, then signed with
	// the second trusted key: loaded once the signatures arrive.
	py := filepath.Join(plugintest.Repo(t), "examples", "python")
	for _, f := range []string{"textstats.py", "textstats.process.json"} {
		data, err := os.ReadFile(filepath.Join(py, f))
		if err != nil {
			t.Fatal(err)
		}
		publishBytes(t, data, filepath.Join(plugins, f))
	}
	d.waitModules(t, "textstats refused", failed("textstats.process.json", "no signature file textstats.process.json.sig"))
	// The launch file alone is not enough: the script it runs is signed too.
	launch := filepath.Join(plugins, "textstats.process.json")
	secret, err := signing.ReadSecretKey(key("b"), "")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signing.Sign(secret, launch, signing.Claim{Module: "textstats", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.WriteSignature(launch+signing.Ext, sig); err != nil {
		t.Fatal(err)
	}
	d.waitModules(t, "textstats refused for its unsigned script", failed("textstats.process.json", "the launch file runs textstats.py, which must be signed too"))
	r = mustRun(t, nil, "sign", "--key", key("b"), "--allow-command", "python3", launch)
	if !strings.Contains(r.stdout, "textstats.py.sig (textstats@1.0.0, key "+keys["b"]+")") {
		t.Errorf("hotmod sign on a launch file signs the script it runs too, with the claim from its manifest: %s", r)
	}
	d.waitModules(t, "textstats, signed by b, active", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("textstats", "1.0.0")) != nil
	})
	d.stop(t, os.Interrupt)

	// Rotation done: a is no longer trusted, and what it signed is refused.
	d = startDaemon(t, plugins, "--trust", pub("b"), "--allow-command", "python3")
	d.waitModules(t, "greeter refused, textstats active", func(mods []hotmod.ModuleInfo) bool {
		return failed("greeter.so", "signed by key "+keys["a"]+", which is not trusted (trusted: "+keys["b"]+")")(mods) &&
			find(mods, active("textstats", "1.0.0")) != nil && find(mods, active("initfile", "1.0.0")) != nil
	})
}

// TestServeWithoutTrustWarns: without --trust nothing is checked, and the
// daemon says so.
func TestServeWithoutTrustWarns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (runs hotmod serve)")
	}
	d := startDaemon(t, t.TempDir())
	d.stop(t, os.Interrupt)
	if !strings.Contains(d.log(), "artifact signatures are not checked") {
		t.Errorf("no warning that signatures are not checked:\n%s", d.log())
	}
	r := hotmodRun(t, nil, "", "serve", "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--trust", "no-such.pub")
	if r.code != 2 || !strings.Contains(r.stderr, `--trust: "no-such.pub" is neither a minisign public key nor a readable key file`) {
		t.Errorf("serve with an unreadable --trust key: %s", r)
	}
	r = hotmodRun(t, nil, "", "sign", filepath.Join(t.TempDir(), "x.so"))
	if r.code != 2 || !strings.Contains(r.stderr, "no signing key: give --key FILE or set HOTMOD_SIGNING_KEY") {
		t.Errorf("sign without a key: %s", r)
	}
}

// refusals counts the daemon's "module Failed" log lines for artifact.
func refusals(t *testing.T, d *daemon, artifact string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(d.log(), "\n") {
		var rec struct{ Msg, Artifact string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "module Failed" && rec.Artifact == artifact {
			n++
		}
	}
	return n
}

// publish renames file into dir, as a publisher does.
func publish(t *testing.T, file, dir string) {
	t.Helper()
	if err := os.Rename(file, filepath.Join(dir, filepath.Base(file))); err != nil {
		t.Fatal(err)
	}
}

// publishBytes writes data (executable) under a hidden name beside dst and
// renames it into place.
func publishBytes(t *testing.T, data []byte, dst string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o755); err != nil {
		t.Fatal(err)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 30s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMinisignInterop: the minisign command line tool verifies what hotmod
// signs, and hotmod what minisign signs with a hotmod key. It needs minisign
// (Debian's package minisign).
func TestMinisignInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (runs the hotmod binary)")
	}
	minisign, err := exec.LookPath("minisign")
	if err != nil {
		t.Skip("minisign is not installed (apt-get install minisign)")
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "k")
	mustRun(t, nil, "keygen", base)
	a, b := filepath.Join(dir, "a.so"), filepath.Join(dir, "b.wasm")
	writeFile(t, a, "bytes of a")
	writeFile(t, b, "bytes of b")
	mustRun(t, nil, "sign", "--key", base+".key", "--module", "a", "--version", "1.0.0", a)
	out, err := exec.Command(minisign, "-V", "-p", base+".pub", "-m", a, "-x", a+".sig").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Trusted comment: hotmod module=a version=1.0.0") {
		t.Errorf("minisign -V on hotmod's signature: %v\n%s", err, out)
	}
	sign := exec.Command(minisign, "-S", "-s", base+".key", "-m", b, "-x", b+".sig", "-t", "hotmod module=b version=2.0.0")
	if out, err := sign.CombinedOutput(); err != nil {
		t.Fatalf("minisign -S with hotmod's key: %v\n%s", err, out)
	}
	if r := mustRun(t, nil, "verify", b, "--trust", base+".pub"); !strings.Contains(r.stdout, "as b@2.0.0") {
		t.Errorf("hotmod verify on minisign's signature: %s", r)
	}
}
