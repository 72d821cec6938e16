package hotmod_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/signing"
)

// TestWithTrustedKeys loads the Python example module through a registry
// that trusts one key: refused unsigned (its script never starts), refused
// when signed for another version, loaded once it and its script are signed.
func TestWithTrustedKeys(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"textstats.py", "textstats.process.json"} {
		data, err := os.ReadFile(filepath.Join("examples", "python", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keys := t.TempDir()
	if _, err := signing.GenerateKey(filepath.Join(keys, "k.key"), filepath.Join(keys, "k.pub")); err != nil {
		t.Fatal(err)
	}
	key, err := signing.ReadSecretKey(filepath.Join(keys, "k.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(file, version string) {
		t.Helper()
		sig, err := signing.Sign(key, file, signing.Claim{Module: "textstats", Version: version})
		if err == nil {
			err = signing.WriteSignature(file+signing.Ext, sig)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	r := newRegistry(t, hotmod.WithTrustedKeys(filepath.Join(keys, "k.pub")), hotmod.WithAllowCommands("python3"))
	launch := filepath.Join(dir, "textstats.process.json")

	// A script that would leave a trace if it ran.
	mark := filepath.Join(dir, "ran")
	evil := filepath.Join(dir, "evil.process")
	if err := os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A wasm module and a native plugin are refused before the wasm
	// transport compiles anything or the native one reads build info.
	wasmFile, soFile := filepath.Join(dir, "m.wasm"), filepath.Join(dir, "m.so")
	os.WriteFile(wasmFile, []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	os.WriteFile(soFile, []byte("\x7fELF"), 0o644)
	for _, c := range []struct{ file, want string }{
		{wasmFile, "no signature file m.wasm.sig"},
		{soFile, "no signature file m.so.sig"},
		{evil, "no signature file evil.process.sig: sign it with hotmod sign"},
		{launch, "no signature file textstats.process.json.sig"},
	} {
		if _, err := r.Load(ctx, c.file); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load %s: %v, want %q", filepath.Base(c.file), err, c.want)
		}
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the unsigned script ran")
	}

	sign(filepath.Join(dir, "textstats.py"), "2.0.0")
	sign(launch, "2.0.0")
	if _, err := r.Load(ctx, launch); err == nil || !strings.Contains(err.Error(), "signed as textstats@2.0.0") || !strings.Contains(err.Error(), "manifest says textstats@1.0.0") {
		t.Errorf("Load of a launch file signed for another version: %v", err)
	}

	sign(filepath.Join(dir, "textstats.py"), "1.0.0")
	sign(launch, "1.0.0")
	if _, err := r.Load(ctx, launch); err != nil {
		t.Fatalf("Load signed: %v", err)
	}
	out, err := r.Invoke(ctx, "textstats", "count_words", map[string]any{"text": "a b c"})
	if err != nil || out["words"] != int64(3) {
		t.Errorf("count_words = %v, %v", out, err)
	}

	// A key that cannot be read refuses everything rather than nothing.
	bad := newRegistry(t, hotmod.WithTrustedKeys(filepath.Join(keys, "missing.pub")))
	if _, err := bad.Load(ctx, launch); err == nil || !strings.Contains(err.Error(), "the trusted keys are unusable") {
		t.Errorf("Load with an unreadable trusted key: %v", err)
	}
}
