// Package sdk is what hotmod modules and hosts share: the contract, the value
// model, the error codes and the author API.
//
// A module is written once against this package:
//
//	package main
//
//	import (
//		"context"
//
//		"github.com/hotmod/hotmod/sdk"
//	)
//
//	const version = "1.0.0"
//
//	var Module = sdk.New("greeter", version).
//		Handle("hello", hello, sdk.Doc("greets someone by name"))
//
//	func hello(ctx context.Context, p map[string]any) (map[string]any, error) {
//		name, _ := p["name"].(string)
//		return map[string]any{"message": "hello, " + name}, nil
//	}
//
//	func main() { sdk.Main(Module) }
//
// Built with `hotmod build`, the package becomes a native plugin whose
// exported variable Module the host looks up.
//
// The package has no dependencies and a low `go` line, so modules can be
// built with older Go toolchains than the host's. Native plugins must still
// be built with the host's exact toolchain; see the repository's DESIGN notes.
package sdk
