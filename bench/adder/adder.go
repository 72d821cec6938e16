// Package adder is the one module every row of the comparison calls: the
// same code is linked into the direct-call row, the Go plugin, and the
// hotmod native, wasm and process artifacts (plugins/adder is its main).
package adder

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

// In and Out are the typed method's params and result.
type In struct {
	A int64 `hotmod:"a,id=1,required"`
	B int64 `hotmod:"b,id=2,required"`
}

type Out struct {
	Sum int64 `hotmod:"sum,id=1"`
}

// New returns the module at the given version: "add" (dynamic: map in, map
// out), "addTyped" (sdk.Func), "sumItems" (dynamic, for the ~4 KiB nested
// payload: sums a+b of every item) and "version" (→ {"version": version},
// which the hot-swap test asks to see when a new version answers). The
// artifacts' main packages call it with their own version constant, so two
// builds differ only in their main package, as native plugins require.
//
// This package makes no module at init: a wasm guest serves the first module
// its program makes (sdk.Declared), which must be its main package's.
func New(version string) *sdk.Module {
	return sdk.New("adder", version).
		Handle("add", Add).
		Method(sdk.Func("addTyped", AddTyped)).
		Handle("sumItems", SumItems).
		Handle("version", func(context.Context, map[string]any) (map[string]any, error) {
			return map[string]any{"version": version}, nil
		})
}

// Add is {"a":1,"b":2} → {"sum":3}.
func Add(_ context.Context, p map[string]any) (map[string]any, error) {
	a, err := sdk.Int(p, "a")
	if err != nil {
		return nil, err
	}
	b, err := sdk.Int(p, "b")
	if err != nil {
		return nil, err
	}
	return map[string]any{"sum": a + b}, nil
}

// AddTyped is Add with Go types.
func AddTyped(_ context.Context, in In) (Out, error) { return Out{Sum: in.A + in.B}, nil }

// SumItems is {"items":[{"a":..,"b":..,...},...]} → {"sum":Σ a+b, "n":len}.
func SumItems(_ context.Context, p map[string]any) (map[string]any, error) {
	items, _ := p["items"].([]any)
	var sum int64
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, sdk.Errorf(sdk.CodeBadParams, "items: want objects")
		}
		a, err := sdk.Int(m, "a")
		if err != nil {
			return nil, err
		}
		b, err := sdk.Int(m, "b")
		if err != nil {
			return nil, err
		}
		sum += a + b
	}
	return map[string]any{"sum": sum, "n": int64(len(items))}, nil
}

// Nested returns the ~4 KiB nested payload: n items, each a small object
// with ints, a string, a float and a nested tag list.
func Nested(n int) map[string]any {
	items := make([]any, n)
	for i := range items {
		items[i] = map[string]any{
			"a":     int64(i),
			"b":     int64(2 * i),
			"name":  "item-name-0000",
			"price": 12.5,
			"tags":  []any{"x", "y"},
		}
	}
	return map[string]any{"items": items, "currency": "EUR"}
}
