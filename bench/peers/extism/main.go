// Command extism is the adder module as an Extism plug-in, the wasm peer of
// the comparison: built by standard Go (GOOS=wasip1 GOARCH=wasm, Go ≥ 1.24,
// -buildmode=c-shared so the exports are callable after _initialize) and run
// by github.com/extism/go-sdk on wazero. It is its own Go module because the
// PDK only compiles for wasm.
//
// Extism exports take bytes and return bytes; JSON is the Go PDK's way to
// carry structured values, so the methods mirror bench/adder with JSON:
// "add" and "sumItems" decode into map[string]any (like hotmod's dynamic
// methods), "addTyped" into a struct (like an sdk.Func).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/extism/go-pdk"
)

type in struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

type out struct {
	Sum int64 `json:"sum"`
}

//go:wasmexport add
func add() int32 {
	p, err := inputMap()
	if err != nil {
		return fail(err)
	}
	a, err := integer(p, "a")
	if err != nil {
		return fail(err)
	}
	b, err := integer(p, "b")
	if err != nil {
		return fail(err)
	}
	return output(map[string]any{"sum": a + b})
}

//go:wasmexport addTyped
func addTyped() int32 {
	var p in
	if err := pdk.InputJSON(&p); err != nil {
		return fail(err)
	}
	return output(out{Sum: p.A + p.B})
}

//go:wasmexport sumItems
func sumItems() int32 {
	p, err := inputMap()
	if err != nil {
		return fail(err)
	}
	items, _ := p["items"].([]any)
	var sum int64
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return fail(errors.New("items: want objects"))
		}
		a, err := integer(m, "a")
		if err != nil {
			return fail(err)
		}
		b, err := integer(m, "b")
		if err != nil {
			return fail(err)
		}
		sum += a + b
	}
	return output(map[string]any{"sum": sum, "n": int64(len(items))})
}

// inputMap decodes the input as a JSON object, keeping integers exact.
func inputMap() (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(pdk.Input()))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func integer(m map[string]any, key string) (int64, error) {
	n, ok := m[key].(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s: want an integer, got %T", key, m[key])
	}
	return n.Int64()
}

func output(v any) int32 {
	if err := pdk.OutputJSON(v); err != nil {
		return fail(err)
	}
	return 0
}

func fail(err error) int32 {
	pdk.SetError(err)
	return 1
}

func main() {}
