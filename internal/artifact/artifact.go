// Package artifact reads what an artifact of any transport says of itself —
// its manifest — the way the transport's own loader reads it, without
// serving it: a native plugin is opened in a throwaway child process only, a
// wasm module is started in its sandbox and its guest discarded, a process
// module (an executable or a launch file) is started, asked for its
// handshake and stopped. `hotmod contract` and `hotmod inspect` use it, so
// the two commands see every artifact alike.
package artifact

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotmod/hotmod/internal/native"
	"github.com/hotmod/hotmod/internal/process"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
)

// Kind is an artifact's transport.
type Kind string

const (
	Native  Kind = "native"
	Wasm    Kind = "wasm"
	Process Kind = "process"
)

// wasmMagic starts every WebAssembly binary.
var wasmMagic = []byte("\x00asm")

// KindOf tells path's transport by its name, as `hotmod serve` does
// (NAME.so, NAME.wasm, NAME.process, NAME.process.json); a file with another
// name is a wasm module when its bytes start like one, else taken for a
// native plugin (whose reader then says what it is not).
func KindOf(path string) Kind {
	switch {
	case process.IsArtifact(path):
		return Process
	case filepath.Ext(path) == ".wasm":
		return Wasm
	case filepath.Ext(path) == ".so":
		return Native
	}
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		head := make([]byte, len(wasmMagic))
		if n, _ := f.Read(head); n == len(head) && bytes.Equal(head, wasmMagic) {
			return Wasm
		}
	}
	return Native
}

// Config is what reading needs from the host's configuration.
type Config struct {
	// Logger receives what loaders log (a process module's stderr, say).
	// Default: discarded.
	Logger *slog.Logger
	// AllowCommands are the programs a launch file may start besides those
	// in its own directory, as for `hotmod serve --allow-command`.
	AllowCommands []string
	// WasmCacheDir is where compiled wasm code is cached; "" compiles
	// without a cache.
	WasmCacheDir string
	// WasmGrants are the capabilities a wasm host would grant (see
	// wasm.Config.Grants); they decide Reading.Refused, not the manifest.
	WasmGrants []string
	// WasmTiers are the isolation tier rules a wasm host would have (see
	// wasm.Config.Tiers); they decide Reading.Tier.
	WasmTiers []string
}

// Reading is what Read found.
type Reading struct {
	Kind     Kind
	Manifest sdk.Manifest
	// Wasm is what a wasm module says of how it was built; nil for other
	// kinds.
	Wasm *wasm.About
	// Tier is the isolation tier a wasm host configured as Config gives the
	// module; "" for other kinds.
	Tier string
	// Refused says why a host configured as Config would refuse the module
	// although its manifest could be read (a wasm capability it asks for
	// and is not granted); "" when it would load.
	Refused string
}

// Read reads the manifest of the artifact at path with the loader of its
// kind. The error is the loader's refusal, worded as a load would word it
// (an *sdk.Error, mostly with code incompatible). A native plugin's build
// info is checked against this host first (native.Preflight): a plugin this
// host cannot open is not opened even in a child.
func Read(ctx context.Context, path string, cfg Config) (Reading, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Reading{}, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := Reading{Kind: KindOf(abs)}
	switch r.Kind {
	case Wasm:
		got, err := wasm.Inspect(ctx, abs, wasm.Config{CacheDir: cfg.WasmCacheDir, Logger: cfg.Logger, Grants: cfg.WasmGrants, Tiers: cfg.WasmTiers})
		if err != nil {
			return r, err
		}
		r.Manifest, r.Wasm, r.Tier, r.Refused = got.Manifest, &got.About, string(got.Tier), got.Refused
		return r, nil
	case Process:
		r.Manifest, err = readProcess(ctx, abs, cfg)
		return r, err
	}
	rep, err := native.Preflight(abs)
	if err != nil {
		return r, sdk.Errorf(sdk.CodeIncompatible, "%v", err)
	}
	if len(rep.Problems) > 0 {
		return r, sdk.Errorf(sdk.CodeIncompatible, "%s cannot be loaded as a native module: %s", abs, strings.Join(rep.Problems, "; "))
	}
	r.Manifest, err = native.ReadManifest(ctx, abs)
	return r, err
}

// readProcess starts a process module as the daemon would (one child), takes
// the manifest from its handshake and stops it.
func readProcess(ctx context.Context, path string, cfg Config) (sdk.Manifest, error) {
	// An executable's private copy is unlinked at once on Linux; elsewhere
	// it stays, so it goes to a directory of its own, removed here.
	tmp, err := os.MkdirTemp("", "hotmod-artifact-")
	if err != nil {
		return sdk.Manifest{}, fmt.Errorf("reading %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	l := process.NewLoader(process.Config{Logger: cfg.Logger, Dir: tmp, AllowCommands: cfg.AllowCommands, PoolSize: 1, Heartbeat: -1})
	defer l.Close()
	inst, err := l.Load(ctx, path)
	if err != nil {
		return sdk.Manifest{}, err
	}
	defer inst.Close()
	return inst.Manifest(), nil
}
