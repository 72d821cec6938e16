// Command rules is a module with packages of its own and a dependency.
package main

import (
	"context"

	"example.com/rules/logic"
	"github.com/hotmod/hotmod/sdk"
)

const version = "1.0.0"

// Module is the symbol hotmod looks up.
var Module = sdk.New("rules", version).Handle("eval", eval)

func eval(_ context.Context, p map[string]any) (map[string]any, error) {
	x, err := sdk.Int(p, "x")
	if err != nil {
		return nil, err
	}
	r := logic.Eval(x)
	return map[string]any{"n": r.N, "dep": r.Dep, "fields": int64(fields(r))}, nil
}

func main() { sdk.Main(Module) }
