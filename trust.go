package hotmod

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hotmod/hotmod/internal/process"
	"github.com/hotmod/hotmod/internal/signing"
	"github.com/hotmod/hotmod/sdk"
)

// WithTrustedKeys makes the registry load only artifacts signed by one of
// keys: each a minisign public key, as the line `minisign -P` takes or the
// path of a public key file (`hotmod keygen` writes one). Give several keys
// to rotate: artifacts signed by any of them load.
//
// An artifact's signature is ARTIFACT.sig beside it (`hotmod sign` writes
// it). It is checked before any of the artifact's code runs; an unsigned,
// tampered or untrusted artifact is Failed with the reason. The signed
// trusted comment names the module and version ("hotmod module=NAME
// version=VERSION"), and an artifact whose manifest says otherwise is
// refused before it is activated. A launch file (.process.json) must also
// have the files it names in its directory (its script) signed for the same
// module and version.
//
// A key that cannot be read makes every load fail with the reason: a
// registry that was asked to check signatures never loads unchecked code.
func WithTrustedKeys(keys ...string) Option {
	return optionFunc(func(c *config) {
		c.trustKeys = append(c.trustKeys, keys...)
		c.trust, c.trustErr = signing.NewVerifier(c.trustKeys...)
	})
}

// verifyArtifact checks path's signature when trusted keys are set, before
// anything of it runs; nil, nil when they are not.
func (r *Registry) verifyArtifact(path string) (*signing.Verified, error) {
	if r.cfg.trustErr != nil {
		return nil, sdk.Errorf(sdk.CodeIncompatible, "%s: not loaded: the trusted keys are unusable: %v", path, r.cfg.trustErr)
	}
	if r.cfg.trust == nil {
		return nil, nil
	}
	verify := r.cfg.trust.Verify
	if t, _ := transportOf(path); t == Native || t == Wasm {
		verify = r.cfg.trust.ReadVerified // loaded from the bytes checked
	}
	v, err := verify(path)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeIncompatible, "%s: refused: %v", path, err)
	}
	return v, nil
}

// admitSigned checks, before inst is activated, that it is the module and
// version its signature names and that the bytes opened are those verified.
func admitSigned(signed *signing.Verified, inst instance, t Transport, path string) error {
	if signed == nil {
		return nil
	}
	sum := inst.Sum()
	if t == Process && strings.HasSuffix(path, process.LaunchExt) {
		sum = "" // a launch file's sum covers the files it names as well
	}
	m := inst.Manifest()
	if err := signed.Admit(m.Name, m.Version, sum); err != nil {
		return sdk.Errorf(sdk.CodeIncompatible, "%s: refused: %v", path, err)
	}
	return nil
}

// failedLaunchFiles lists the launch files in dir whose last load failed: a
// signature for a file one of them names may have arrived.
func (r *Registry) failedLaunchFiles(dir string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for p := range r.failed {
		if strings.HasSuffix(p, process.LaunchExt) && filepath.Dir(p) == dir {
			out = append(out, p)
		}
	}
	return out
}

// affected lists the artifacts an event on path concerns: path itself when
// it is an artifact; for a signature file X.sig, X when X is an artifact,
// else the launch files that failed (X may be a script one of them runs).
// A signature file is never an artifact itself.
func (d *dirWatch) affected(path string) []string {
	if d.wanted(path) {
		return []string{path}
	}
	signed, ok := strings.CutSuffix(path, signing.Ext)
	if !ok || strings.HasPrefix(filepath.Base(path), ".") {
		return nil
	}
	if d.wanted(signed) {
		return []string{signed}
	}
	return d.r.failedLaunchFiles(d.dir)
}

// verifiedKey carries a load's *signing.Verified to the process loader's
// CheckCopy.
type verifiedKey struct{}

func withVerified(ctx context.Context, v *signing.Verified) context.Context {
	if v == nil {
		return ctx
	}
	return context.WithValue(ctx, verifiedKey{}, v)
}

// checkCopy is the process loader's CheckCopy when trusted keys are set:
// the private copy children start from must be the bytes verified.
func (r *Registry) checkCopy() func(ctx context.Context, artifact, sum string) error {
	if r.cfg.trust == nil {
		return nil
	}
	return func(ctx context.Context, artifact, sum string) error {
		v, _ := ctx.Value(verifiedKey{}).(*signing.Verified)
		if v == nil {
			return fmt.Errorf("refused: its signature was not verified")
		}
		if v.Sum != sum {
			return fmt.Errorf("refused: its bytes changed between signature verification and loading (sha256 %.12s verified, %.12s copied): publish artifacts by renaming them into place", v.Sum, sum)
		}
		return nil
	}
}
