package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
)

// extismPeer is the wasm peer: the Extism guest (peers/extism, standard Go,
// wasip1) run by github.com/extism/go-sdk on wazero. An Extism Plugin is not
// safe for concurrent use, so calls take an instance from a pool of
// GOMAXPROCS instances of one CompiledPlugin — the same default as hotmod's
// wasm pool.
type extismPeer struct {
	compiled *extism.CompiledPlugin
	pool     chan *extism.Plugin
	all      []*extism.Plugin
}

// newExtism compiles the guest (with a wazero compilation cache in
// cacheDir) and starts instances instances of it; grow adds more, up to
// extismPoolSize.
func newExtism(ctx context.Context, wasmPath, cacheDir string, instances int) (*extismPeer, error) {
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return nil, err
	}
	cp, err := extism.NewCompiledPlugin(ctx,
		extism.Manifest{Wasm: []extism.Wasm{extism.WasmFile{Path: wasmPath}}},
		extism.PluginConfig{EnableWasi: true, RuntimeConfig: wazero.NewRuntimeConfig().WithCompilationCache(cache)},
		nil)
	if err != nil {
		return nil, err
	}
	e := &extismPeer{compiled: cp, pool: make(chan *extism.Plugin, max(instances, extismPoolSize()))}
	for range instances {
		if err := e.grow(ctx); err != nil {
			e.Close(ctx)
			return nil, err
		}
	}
	return e, nil
}

func (e *extismPeer) grow(ctx context.Context) error {
	p, err := e.compiled.Instance(ctx, extism.PluginInstanceConfig{})
	if err != nil {
		return err
	}
	e.all = append(e.all, p)
	e.pool <- p
	return nil
}

// call sends params as JSON to the guest's export fn and decodes its JSON
// answer into result, holding one instance for the whole call.
func (e *extismPeer) call(ctx context.Context, fn string, params, result any) error {
	in, err := json.Marshal(params)
	if err != nil {
		return err
	}
	p := <-e.pool
	defer func() { e.pool <- p }()
	rc, out, err := p.CallWithContext(ctx, fn, in)
	if err != nil {
		return err
	}
	if rc != 0 {
		return fmt.Errorf("extism %s: return code %d", fn, rc)
	}
	return json.Unmarshal(out, result)
}

func (e *extismPeer) Close(ctx context.Context) {
	for _, p := range e.all {
		_ = p.Close(ctx)
	}
	_ = e.compiled.Close(ctx)
}

// extismIn and extismOut are the typed call's JSON shapes (the guest's
// addTyped decodes into the same struct).
type extismIn struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

type extismOut struct {
	Sum int64 `json:"sum"`
}

func extismPoolSize() int { return runtime.GOMAXPROCS(0) }
