// Package signing signs artifacts and verifies them before any of their code
// runs. Signatures are minisign signatures (https://jedisct1.github.io/minisign/),
// kept beside the artifact as ARTIFACT.sig, so that the minisign command line
// tool can make and check them too.
//
// A signature covers the artifact's bytes and, in its signed "trusted
// comment", the module name and version the artifact holds:
//
//	trusted comment: hotmod module=pricing version=1.2.0
//
// A Verifier checks the bytes against its trusted keys before the artifact
// is opened (Verify), and the manifest the artifact then reports against the
// signed name and version before it is activated (Verified.Admit).
package signing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"aead.dev/minisign"
)

// Ext is the extension of a signature file: ARTIFACT.sig.
const Ext = ".sig"

// MaxSignature bounds a signature file's size; a minisign signature with a
// one-line trusted comment is about 300 bytes.
const MaxSignature = 4 << 10

// MaxArtifact bounds the artifact ReadVerified reads into memory.
const MaxArtifact = 1 << 30

// maxLaunchFile bounds the launch file read to find the files it names
// (the process transport refuses larger ones anyway).
const maxLaunchFile = 1 << 20

// launchExt names a process module's launch file.
const launchExt = ".process.json"

// Claim is what a signature says the artifact holds.
type Claim struct {
	Module, Version string
}

// commentPrefix starts every trusted comment hotmod writes.
const commentPrefix = "hotmod"

// Comment is the trusted comment that carries c: "hotmod module=NAME version=VER".
func (c Claim) Comment() string {
	return fmt.Sprintf("%s module=%s version=%s", commentPrefix, c.Module, c.Version)
}

// Check says what is wrong with c as a claim, if anything.
func (c Claim) Check() error {
	for _, f := range []struct{ what, v string }{{"module", c.Module}, {"version", c.Version}} {
		if f.v == "" {
			return fmt.Errorf("no %s name given", f.what)
		}
		if strings.ContainsAny(f.v, " \t\r\n=") {
			return fmt.Errorf("the %s %q has a space or '='", f.what, f.v)
		}
	}
	return nil
}

// ParseComment reads a trusted comment written by Comment. Fields it does
// not know (a timestamp, say) are ignored.
func ParseComment(s string) (Claim, error) {
	words := strings.Fields(s)
	if len(words) == 0 || words[0] != commentPrefix {
		return Claim{}, fmt.Errorf("its trusted comment %q is not hotmod's (\"hotmod module=NAME version=VERSION\"): sign it with hotmod sign, or minisign -t \"hotmod module=NAME version=VERSION\"", s)
	}
	var c Claim
	for _, w := range words[1:] {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case "module":
			c.Module = v
		case "version":
			c.Version = v
		}
	}
	if c.Module == "" || c.Version == "" {
		return Claim{}, fmt.Errorf("its trusted comment %q names no module=NAME and version=VERSION", s)
	}
	return c, nil
}

// KeyID formats a key id as minisign prints it.
func KeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// ParsePublicKey reads a public key: the base64 line minisign prints (as
// `minisign -P` takes it) or the path of a public key file.
func ParsePublicKey(s string) (minisign.PublicKey, error) {
	var k minisign.PublicKey
	if err := k.UnmarshalText([]byte(strings.TrimSpace(s))); err == nil {
		return k, nil
	}
	data, err := os.ReadFile(s)
	if err != nil {
		return k, fmt.Errorf("%q is neither a minisign public key nor a readable key file: %v", s, err)
	}
	if err := k.UnmarshalText(bytes.TrimSpace(data)); err != nil {
		return k, fmt.Errorf("%s is not a minisign public key file: %v", s, err)
	}
	return k, nil
}

// Verifier checks signatures against a set of trusted public keys. The zero
// value trusts no key and refuses everything.
type Verifier struct {
	keys map[uint64]minisign.PublicKey
}

// NewVerifier trusts keys, each as ParsePublicKey reads it. Several keys let
// artifacts signed by an old and a new key load during a key rotation.
func NewVerifier(keys ...string) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("no trusted key given")
	}
	v := &Verifier{keys: map[uint64]minisign.PublicKey{}}
	for _, s := range keys {
		k, err := ParsePublicKey(s)
		if err != nil {
			return nil, err
		}
		v.keys[k.ID()] = k
	}
	return v, nil
}

// KeyIDs lists the trusted keys' ids.
func (v *Verifier) KeyIDs() []string {
	var ids []string
	for id := range v.keys {
		ids = append(ids, KeyID(id))
	}
	return ids
}

// Verified is an artifact whose signature Verify accepted.
type Verified struct {
	Claim
	// KeyID is the id of the key that signed it.
	KeyID string
	// Sum is the sha256 (hex) of the bytes that were verified.
	Sum string
	// Files are the files a launch file names inside its directory, each
	// verified with the same claim.
	Files []string
	// Data are the verified bytes, from ReadVerified only.
	Data []byte
}

// ReadVerified is Verify that also returns the artifact's bytes as they were
// verified (in Verified.Data), for a loader to use instead of reading the
// file again: what is loaded is then what was checked, whatever happens to
// the file meanwhile. It reads at most MaxArtifact bytes.
func (v *Verifier) ReadVerified(path string) (*Verified, error) {
	return v.verify(path, true)
}

// Verify checks the signature file path+".sig" of the artifact at path
// against the trusted keys. It reads the artifact and its signature and
// nothing else runs. A launch file (.process.json) must also have every
// file it names inside its own directory (the script it runs, say) signed
// by a trusted key for the same module and version. The error says what is
// wrong and what to do.
func (v *Verifier) Verify(path string) (*Verified, error) {
	return v.verify(path, false)
}

func (v *Verifier) verify(path string, keep bool) (*Verified, error) {
	got, err := v.verifyFile(path, keep)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, launchExt) {
		files, err := LaunchFiles(path)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			sub, err := v.verifyFile(f, false)
			if err != nil {
				return nil, fmt.Errorf("the launch file runs %s, which must be signed too: %w", filepath.Base(f), err)
			}
			if sub.Claim != got.Claim {
				return nil, fmt.Errorf("the launch file is signed for %s@%s but %s, which it runs, is signed for %s@%s: sign both for the same module and version",
					got.Module, got.Version, filepath.Base(f), sub.Module, sub.Version)
			}
			got.Files = append(got.Files, f)
		}
	}
	return got, nil
}

// verifyFile checks one file against its signature file; keep keeps the
// bytes it read in Verified.Data.
func (v *Verifier) verifyFile(path string, keep bool) (*Verified, error) {
	sigPath := path + Ext
	text, err := readLimited(sigPath, MaxSignature)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no signature file %s: sign it with hotmod sign", filepath.Base(sigPath))
	}
	if err != nil {
		return nil, fmt.Errorf("reading the signature file %s: %v", filepath.Base(sigPath), err)
	}
	var sig minisign.Signature
	if err := sig.UnmarshalText(text); err != nil {
		return nil, fmt.Errorf("the signature file %s is not a minisign signature (%v): sign it again with hotmod sign", filepath.Base(sigPath), err)
	}
	key, ok := v.keys[sig.KeyID]
	if !ok {
		return nil, fmt.Errorf("signed by key %s, which is not trusted (trusted: %s): sign it with a trusted key, or trust that key with --trust",
			KeyID(sig.KeyID), strings.Join(v.KeyIDs(), ", "))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	var r io.Reader = io.TeeReader(f, h)
	var data []byte
	if keep {
		if data, err = io.ReadAll(io.LimitReader(r, MaxArtifact+1)); err != nil {
			return nil, fmt.Errorf("reading %s to verify it: %v", filepath.Base(path), err)
		}
		if len(data) > MaxArtifact {
			return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), MaxArtifact)
		}
		r = bytes.NewReader(data)
	}
	ok, err = verifyReader(key, r, text, sig.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("reading %s to verify it: %v", filepath.Base(path), err)
	}
	if !ok {
		return nil, fmt.Errorf("its bytes or trusted comment do not match the signature in %s by key %s: the file was changed after it was signed (or the signature belongs to another file); sign the artifact again",
			filepath.Base(sigPath), KeyID(sig.KeyID))
	}
	c, err := ParseComment(sig.TrustedComment)
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", filepath.Base(sigPath), err)
	}
	return &Verified{Claim: c, KeyID: KeyID(sig.KeyID), Sum: hex.EncodeToString(h.Sum(nil)), Data: data}, nil
}

// verifyReader checks the message r against the signature text. A prehashed
// signature (minisign's default since 0.10, and what Sign writes) is checked
// while streaming; a legacy one needs the whole message.
func verifyReader(key minisign.PublicKey, r io.Reader, sig []byte, alg uint16) (bool, error) {
	if alg == minisign.HashEdDSA {
		mr := minisign.NewReader(r)
		if _, err := io.Copy(io.Discard, mr); err != nil {
			return false, err
		}
		return mr.Verify(key, sig), nil
	}
	msg, err := io.ReadAll(r)
	if err != nil {
		return false, err
	}
	return minisign.Verify(key, msg, sig), nil
}

// Admit checks, before the artifact is activated, that the manifest it
// reported is the module and version its signature names, and (when sum
// is not "") that the bytes loaded are the bytes verified.
func (v *Verified) Admit(name, version, sum string) error {
	if name != v.Module || version != v.Version {
		return fmt.Errorf("it is signed as %s@%s (key %s) but its manifest says %s@%s: a signature holds for the module and version it was made for; sign this build for what it is",
			v.Module, v.Version, v.KeyID, name, version)
	}
	if sum != "" && sum != v.Sum {
		return fmt.Errorf("its bytes changed between signature verification and loading (sha256 %.12s verified, %.12s loaded): publish artifacts by renaming them into place", v.Sum, sum)
	}
	return nil
}

// LaunchFiles lists the regular files a launch file's command and arguments
// name inside its directory: those must be signed too. Words that name
// nothing there (a program found in the PATH, a flag) are left to the
// launch file's own signature, which fixes them.
func LaunchFiles(path string) ([]string, error) {
	data, err := readLimited(path, maxLaunchFile)
	if err != nil {
		return nil, err
	}
	var lf struct {
		Command string   `json:"command"`
		Args    []string `json:"args"`
	}
	if err := json.Unmarshal(data, &lf); err != nil {
		return nil, fmt.Errorf("the launch file is not valid JSON: %v", err)
	}
	dir := filepath.Dir(path)
	var out []string
	for _, w := range append([]string{lf.Command}, lf.Args...) {
		if w == "" || strings.HasPrefix(w, "-") {
			continue
		}
		p := w
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue // outside the directory: not something dropped in with the module
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && p != path {
			out = append(out, p)
		}
	}
	return out, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), limit)
	}
	return data, nil
}

// Bytes returns the verified bytes ReadVerified kept; nil for a nil v.
func (v *Verified) Bytes() []byte {
	if v == nil {
		return nil
	}
	return v.Data
}
