package wasm

import (
	"context"
	"os"

	"github.com/hotmod/hotmod/sdk"
)

// Inspection is what Inspect finds out about an artifact.
type Inspection struct {
	Path     string       `json:"path"`
	Size     int64        `json:"size"`
	Sum      string       `json:"sha256"`
	About    About        `json:"about"`
	Manifest sdk.Manifest `json:"manifest"`
	// Tier is the isolation tier a host with cfg's tiers gives the module.
	Tier Tier `json:"tier"`
	// Refused says why a host with cfg's grants would refuse the module
	// (a capability it asks for and is not granted); "" when it would load.
	Refused string `json:"refused,omitempty"`
}

// Inspect reads what a .wasm artifact says of itself — its ABI version, the
// Go and SDK versions it was built with, its manifest — the way Load does
// (compiled code comes from cfg.CacheDir when it is there: tens of
// milliseconds then, about a second the first time), and whether a host
// configured with cfg would grant what it asks for. An artifact that cannot
// be loaded at all gives the same error Load would. Its package
// initialisation runs, in the sandbox; no hook and no method does.
func Inspect(ctx context.Context, path string, cfg Config) (Inspection, error) {
	cfg.PoolSize = 1
	l, err := NewLoader(ctx, cfg)
	if err != nil {
		return Inspection{}, err
	}
	defer l.Close(context.Background())
	data, err := artifactBytes(path, nil)
	if err != nil {
		return Inspection{}, err
	}
	i, g, err := l.open(ctx, path, data)
	if err != nil {
		return Inspection{}, err
	}
	g.discard()
	i.down()
	i.closeCompiled()
	in := Inspection{Path: path, Sum: i.sum, About: i.about, Manifest: i.manifest, Tier: tierOf(l.tiers, i.manifest.Name)}
	if fi, err := os.Stat(path); err == nil {
		in.Size = fi.Size()
	}
	if _, err := authority(sandbox(), l.grants, i.manifest.Name, i.manifest.Needs); err != nil {
		in.Refused = err.Error()
	}
	return in, nil
}
