// Package shared is the hashicorp/go-plugin side of the comparison: one
// interface served over net/rpc (gob) and over gRPC (structpb.Struct, so no
// protoc step), by peers/goplugin.
package shared

import (
	"context"
	"encoding/gob"
	"net/rpc"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// Handshake is shared by the plugin binary and the harness.
var Handshake = plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "HOTMOD_BENCH", MagicCookieValue: "adder"}

// Caller is what the harness calls: a method name and a params map.
type Caller interface {
	Call(method string, params map[string]any) (map[string]any, error)
}

// Impl is the plugin-side implementation (the adder module's dynamic methods).
type Impl func(method string, params map[string]any) (map[string]any, error)

func init() {
	gob.Register(map[string]any{})
	gob.Register([]any{})
}

// ---- net/rpc ----

// Args is the net/rpc request.
type Args struct {
	Method string
	Params map[string]any
}

type rpcServer struct{ impl Impl }

func (s *rpcServer) Call(a Args, resp *map[string]any) error {
	out, err := s.impl(a.Method, a.Params)
	*resp = out
	return err
}

type rpcClient struct{ c *rpc.Client }

func (c *rpcClient) Call(method string, params map[string]any) (map[string]any, error) {
	var out map[string]any
	err := c.c.Call("Plugin.Call", Args{Method: method, Params: params}, &out)
	return out, err
}

// NetRPCPlugin is the go-plugin net/rpc plugin.
type NetRPCPlugin struct{ Impl Impl }

func (p *NetRPCPlugin) Server(*plugin.MuxBroker) (any, error) { return &rpcServer{p.Impl}, nil }
func (p *NetRPCPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return &rpcClient{c}, nil
}

// ---- gRPC (hand-written service descriptor, structpb messages) ----

type grpcService interface {
	Call(context.Context, *structpb.Struct) (*structpb.Struct, error)
}

type grpcServer struct{ impl Impl }

func (s *grpcServer) Call(_ context.Context, in *structpb.Struct) (*structpb.Struct, error) {
	m := in.AsMap()
	method, _ := m["method"].(string)
	params, _ := m["params"].(map[string]any)
	out, err := s.impl(method, params)
	if err != nil {
		return nil, err
	}
	return structpb.NewStruct(out)
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "bench.Adder",
	HandlerType: (*grpcService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(structpb.Struct)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(grpcService).Call(ctx, in)
		},
	}},
	Streams: []grpc.StreamDesc{},
}

type grpcClient struct{ cc *grpc.ClientConn }

func (c *grpcClient) Call(method string, params map[string]any) (map[string]any, error) {
	in, err := structpb.NewStruct(map[string]any{"method": method, "params": params})
	if err != nil {
		return nil, err
	}
	out := new(structpb.Struct)
	if err := c.cc.Invoke(context.Background(), "/bench.Adder/Call", in, out); err != nil {
		return nil, err
	}
	return out.AsMap(), nil
}

// GRPCPlugin is the go-plugin gRPC plugin.
type GRPCPlugin struct {
	plugin.Plugin
	Impl Impl
}

func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&serviceDesc, &grpcServer{p.Impl})
	return nil
}

func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &grpcClient{cc}, nil
}
