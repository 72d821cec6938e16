// Command greeter is the smallest hotmod module: one method, one param.
//
//	hotmod invoke greeter hello '{"name":"Ada"}'  →  {"message":"hello, Ada"}
package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

// version is the one place greeter's version is set.
const version = "1.0.0"

// Module is the symbol hotmod looks up in the built artifact.
var Module = sdk.New("greeter", version).
	Handle("hello", hello, sdk.Doc(`{"name": string} → {"message": "hello, <name>"}`))

func hello(_ context.Context, p map[string]any) (map[string]any, error) {
	name, err := sdk.String(p, "name")
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": "hello, " + name}, nil
}

func main() { sdk.Main(Module) }
