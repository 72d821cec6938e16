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
// # Typed methods
//
// hello above is dynamic: it reads a map and checks it itself. A typed
// method declares its params and result as structs; the SDK derives their
// schemas (which go into the manifest, for people, `hotmod contract` and the
// host's compatibility check) from the fields' hotmod tags and decodes and
// encodes by plans built once, at registration:
//
//	type HelloParams struct {
//		Name  string `hotmod:"name,id=1,required"`
//		Greet string `hotmod:"greet,id=2,default=hello,alias=greeting"`
//	}
//	type Hello struct {
//		Message string `hotmod:"message,id=1"`
//	}
//	var Module = sdk.New("greeter", version).
//		Method(sdk.Func("hello", func(ctx context.Context, p HelloParams) (Hello, error) {
//			return Hello{Message: p.Greet + ", " + p.Name}, nil
//		}))
//
// See Func for the tag grammar and the decoding rules. Hosts call typed
// methods with their own structs through Encode and Decode (maps, the native
// transport) or EncodeCBOR and DecodeCBOR (bytes, Module.InvokeCBOR).
//
// # Values
//
// A dynamic method's params and result are made of the value model's types
// (see CheckValue): nil, bool, int64, float64, string, []byte, []any and
// map[string]any. A result with anything else in it is a module_error naming
// its path and Go type, on every transport. ToValue and ToParams convert
// common Go values into the model — integers of every width, slices, maps
// with string keys, time.Duration (nanoseconds) and time.Time (RFC 3339 text
// in UTC):
//
//	return sdk.ToParams(map[string]any{"ids": ids, "since": since})
//
// The package has no dependencies and a low `go` line, so modules can be
// built with older Go toolchains than the host's. Native plugins must still
// be built with the host's exact toolchain; see the repository's DESIGN notes.
package sdk
