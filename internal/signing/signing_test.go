package signing

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// keyPair makes a key pair with GenerateKey in dir and returns the secret
// key and the public key file's path.
func keyPair(t *testing.T, dir, name string) (minisign.PrivateKey, string) {
	t.Helper()
	pub, err := GenerateKey(filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := ReadSecretKey(filepath.Join(dir, name+".key"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(sec.Public()) {
		t.Fatal("the secret key read back is not the public key's pair")
	}
	return sec, filepath.Join(dir, name+".pub")
}

// signed writes data to dir/name and signs it for c with key.
func signed(t *testing.T, key minisign.PrivateKey, dir, name string, data []byte, c Claim) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeSigned(t, key, p, data, c)
	return p
}

// writeSigned writes data to p and signs it for c (default pricing).
func writeSigned(t testing.TB, key minisign.PrivateKey, p string, data []byte, c ...Claim) {
	t.Helper()
	claim := pricing
	if len(c) > 0 {
		claim = c[0]
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sig, err := Sign(key, p, claim)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteSignature(p+Ext, sig); err != nil {
		t.Fatal(err)
	}
}

func verifier(t *testing.T, keys ...string) *Verifier {
	t.Helper()
	v, err := NewVerifier(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}

var pricing = Claim{Module: "pricing", Version: "1.2.0"}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	key, pub := keyPair(t, dir, "a")
	other, otherPub := keyPair(t, dir, "b")
	data := []byte("\x7fELF pretend module bytes")
	art := signed(t, key, dir, "pricing.so", data, pricing)

	got, err := verifier(t, pub).Verify(art)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got.Claim != pricing || got.KeyID != KeyID(key.ID()) || got.Sum != hex.EncodeToString(sum[:]) {
		t.Errorf("Verify = %+v, want %+v by %s", got, pricing, KeyID(key.ID()))
	}
	if err := got.Admit("pricing", "1.2.0", got.Sum); err != nil {
		t.Errorf("Admit of what was signed: %v", err)
	}
	if got.Bytes() != nil {
		t.Error("Verify kept the bytes; only ReadVerified does")
	}
	read, err := verifier(t, pub).ReadVerified(art)
	if err != nil || string(read.Bytes()) != string(data) || read.Sum != got.Sum {
		t.Errorf("ReadVerified = %q, %v; want the artifact's bytes", read.Bytes(), err)
	}

	t.Run("rotation: either trusted key", func(t *testing.T) {
		art2 := signed(t, other, dir, "other.so", data, pricing)
		v := verifier(t, pub, otherPub)
		for _, p := range []string{art, art2} {
			if _, err := v.Verify(p); err != nil {
				t.Errorf("%s with both keys trusted: %v", p, err)
			}
		}
		_, err := verifier(t, otherPub).Verify(art)
		wantErr(t, err, "signed by key "+KeyID(key.ID()), "not trusted", KeyID(other.ID()))
	})
	t.Run("unsigned", func(t *testing.T) {
		p := filepath.Join(dir, "bare.wasm")
		os.WriteFile(p, data, 0o644)
		_, err := verifier(t, pub).Verify(p)
		wantErr(t, err, "no signature file bare.wasm.sig: sign it with hotmod sign")
	})
	t.Run("tampered bytes", func(t *testing.T) {
		p := signed(t, key, dir, "t.so", data, pricing)
		os.WriteFile(p, append(data, 0), 0o644)
		_, err := verifier(t, pub).Verify(p)
		wantErr(t, err, "do not match the signature", "t.so.sig", KeyID(key.ID()))
	})
	t.Run("tampered trusted comment", func(t *testing.T) {
		p := signed(t, key, dir, "c.so", data, pricing)
		sig, _ := os.ReadFile(p + Ext)
		os.WriteFile(p+Ext, []byte(strings.Replace(string(sig), "module=pricing", "module=billing", 1)), 0o644)
		_, err := verifier(t, pub).Verify(p)
		wantErr(t, err, "do not match the signature")
	})
	t.Run("signature of another file", func(t *testing.T) {
		a := signed(t, key, dir, "x.so", data, pricing)
		b := signed(t, key, dir, "y.so", []byte("other bytes"), pricing)
		sig, _ := os.ReadFile(b + Ext)
		os.WriteFile(a+Ext, sig, 0o644)
		_, err := verifier(t, pub).Verify(a)
		wantErr(t, err, "do not match")
	})
	t.Run("not a signature", func(t *testing.T) {
		p := signed(t, key, dir, "m.so", data, pricing)
		os.WriteFile(p+Ext, []byte("hello\n"), 0o644)
		_, err := verifier(t, pub).Verify(p)
		wantErr(t, err, "m.so.sig is not a minisign signature")
	})
	t.Run("huge signature file", func(t *testing.T) {
		p := signed(t, key, dir, "h.so", data, pricing)
		os.WriteFile(p+Ext, make([]byte, MaxSignature+1), 0o644)
		_, err := verifier(t, pub).Verify(p)
		wantErr(t, err, "larger than 4096 bytes")
	})
	t.Run("trusted comment not hotmod's", func(t *testing.T) {
		p := filepath.Join(dir, "plain.so")
		os.WriteFile(p, data, 0o644)
		// What `minisign -S` writes by default.
		os.WriteFile(p+Ext, minisign.SignWithComments(key, data, "timestamp:1700000000\tfile:plain.so\thashed", "x"), 0o644)
		_, err := verifier(t, pub).Verify(p)
		wantErr(t, err, "is not hotmod's", `minisign -t "hotmod module=NAME version=VERSION"`)
	})
	t.Run("legacy signature", func(t *testing.T) {
		p := filepath.Join(dir, "legacy.so")
		os.WriteFile(p, data, 0o644)
		os.WriteFile(p+Ext, minisign.SignWithComments(key, data, pricing.Comment()+" timestamp=1", "x"), 0o644)
		got, err := verifier(t, pub).Verify(p)
		if err != nil || got.Claim != pricing {
			t.Errorf("a legacy (not prehashed) signature: %+v, %v", got, err)
		}
	})
}

func TestAdmit(t *testing.T) {
	v := &Verified{Claim: pricing, KeyID: "00000000000000AB", Sum: "aaaa"}
	wantErr(t, v.Admit("billing", "1.2.0", ""), "signed as pricing@1.2.0 (key 00000000000000AB)", "manifest says billing@1.2.0")
	wantErr(t, v.Admit("pricing", "1.3.0", ""), "manifest says pricing@1.3.0")
	wantErr(t, v.Admit("pricing", "1.2.0", "bbbb"), "changed between signature verification and loading")
	if err := v.Admit("pricing", "1.2.0", ""); err != nil {
		t.Errorf("no sum to compare: %v", err)
	}
}

func TestLaunchFile(t *testing.T) {
	dir := t.TempDir()
	key, pub := keyPair(t, dir, "k")
	v := verifier(t, pub)
	stats := Claim{Module: "textstats", Version: "1.0.0"}
	launch := []byte(`{"command": "python3", "args": ["-u", "stats.py", "/etc/hostname", "../outside.py"], "protocol": "json"}`)
	os.WriteFile(filepath.Join(filepath.Dir(dir), "outside.py"), []byte("x"), 0o644)
	script := filepath.Join(dir, "stats.py")
	os.WriteFile(script, []byte("print('hi')\n"), 0o644)
	lf := signed(t, key, dir, "stats.process.json", launch, stats)

	files, err := LaunchFiles(lf)
	if err != nil || len(files) != 1 || files[0] != script {
		t.Fatalf("LaunchFiles = %q, %v; want only %s (python3 is in the PATH, the rest outside)", files, err, script)
	}
	_, err = v.Verify(lf)
	wantErr(t, err, "the launch file runs stats.py, which must be signed too", "no signature file stats.py.sig")

	signed(t, key, dir, "stats.py", []byte("print('hi')\n"), Claim{Module: "other", Version: "1.0.0"})
	_, err = v.Verify(lf)
	wantErr(t, err, "signed for textstats@1.0.0 but stats.py", "other@1.0.0")

	signed(t, key, dir, "stats.py", []byte("print('hi')\n"), stats)
	got, err := v.Verify(lf)
	if err != nil || len(got.Files) != 1 {
		t.Fatalf("signed launch file and script: %+v, %v", got, err)
	}
	os.WriteFile(script, []byte("import os; os.system('evil')\n"), 0o644)
	_, err = v.Verify(lf)
	wantErr(t, err, "stats.py, which must be signed too", "do not match")
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	_, pubFile := keyPair(t, dir, "k")
	fi, err := os.Stat(filepath.Join(dir, "k.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if _, err := GenerateKey(filepath.Join(dir, "k.key"), filepath.Join(dir, "new.pub")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("GenerateKey over an existing key: %v", err)
	}
	fromFile, err := ParsePublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	fromLine, err := ParsePublicKey(fromFile.String())
	if err != nil || !fromLine.Equal(fromFile) {
		t.Errorf("the key's base64 line: %v", err)
	}
	_, err = NewVerifier("no-such-key.pub")
	wantErr(t, err, `"no-such-key.pub" is neither a minisign public key nor a readable key file`)
	_, err = NewVerifier(filepath.Join(dir, "k.key"))
	wantErr(t, err, "k.key is not a minisign public key file")
	_, err = NewVerifier()
	wantErr(t, err, "no trusted key")

	// A key encrypted with a password, as `minisign -G` makes by default
	// (password "pw"). Decrypting one costs scrypt with 1 GiB of memory, so
	// only the refusal without a password is checked here.
	_, err = ReadSecretKey(filepath.Join("testdata", "encrypted.key"), "")
	wantErr(t, err, "encrypted with a password", PasswordEnv)
}

func TestClaim(t *testing.T) {
	for _, s := range []string{"hotmod module=a version=1.0.0", "hotmod version=1.0.0 module=a timestamp=5"} {
		if c, err := ParseComment(s); err != nil || c != (Claim{"a", "1.0.0"}) {
			t.Errorf("ParseComment(%q) = %+v, %v", s, c, err)
		}
	}
	for _, s := range []string{"", "timestamp:1 file:a.so", "hotmod module=a", "hotmod version=1"} {
		if _, err := ParseComment(s); err == nil {
			t.Errorf("ParseComment(%q): no error", s)
		}
	}
	if err := (Claim{"a b", "1"}).Check(); err == nil {
		t.Error("a module name with a space would make the comment ambiguous")
	}
	if c, err := ParseComment(pricing.Comment()); err != nil || c != pricing {
		t.Errorf("round trip: %+v %v", c, err)
	}
}
