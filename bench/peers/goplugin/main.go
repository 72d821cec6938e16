// Command goplugin serves the adder module through hashicorp/go-plugin,
// over gRPC or net/rpc: BENCH_PROTO=grpc|netrpc (go-plugin picks the
// protocol from the plugin set, so each run serves one set).
package main

import (
	"context"
	"os"

	"github.com/hashicorp/go-plugin"
	"github.com/hotmod/hotmod/bench/adder"
	"github.com/hotmod/hotmod/bench/shared"
)

var module = adder.New("1.0.0")

func impl(method string, params map[string]any) (map[string]any, error) {
	return module.Invoke(context.Background(), method, params)
}

func main() {
	cfg := &plugin.ServeConfig{HandshakeConfig: shared.Handshake}
	if os.Getenv("BENCH_PROTO") == "grpc" {
		cfg.Plugins = plugin.PluginSet{"adder": &shared.GRPCPlugin{Impl: impl}}
		cfg.GRPCServer = plugin.DefaultGRPCServer
	} else {
		cfg.Plugins = plugin.PluginSet{"adder": &shared.NetRPCPlugin{Impl: impl}}
	}
	plugin.Serve(cfg)
}
