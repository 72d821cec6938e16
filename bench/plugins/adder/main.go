// Command adder is the benchmark module as a hotmod artifact (native,
// wasm or process) and as a raw Go plugin. The hot-swap and memory tests
// build copies of this package with another version.go.
package main

import (
	"context"

	"github.com/hotmod/hotmod/bench/adder"
	"github.com/hotmod/hotmod/sdk"
)

// Module is what hotmod looks up.
var Module = adder.New(version)

// Add is what the raw Go-plugin row looks up and calls.
func Add(ctx context.Context, p map[string]any) (map[string]any, error) { return adder.Add(ctx, p) }

func main() { sdk.Main(Module) }
