package plugintest

// OutsideModelSource is the main.go of module "shapes" 1.0.0, whose dynamic
// methods return Go values outside the value model — "ints" an []int,
// "when" a time.Time nested in a map — and "converted" the same values
// passed through sdk.ToParams. Built for every transport (Source, then
// Build, BuildWasm or BuildProcess), it shows that such a result is the
// same module_error, in the same words, on every transport.
const OutsideModelSource = `package main

import (
	"context"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("shapes", "1.0.0").
	Handle("ints", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"xs": []int{1, 2, 3}}, nil
	}).
	Handle("when", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"meta": map[string]any{"at": time.Unix(0, 0)}}, nil
	}).
	Handle("converted", func(context.Context, map[string]any) (map[string]any, error) {
		return sdk.ToParams(map[string]any{"xs": []int{1, 2, 3}, "at": time.Unix(0, 0)})
	})

func main() { sdk.Main(Module) }
`

// OutsideModelErrors are the messages of the errors shapes' methods "ints"
// and "when" give, on every transport.
var OutsideModelErrors = map[string]string{
	"ints": "module_error: method ints returned a result that cannot cross the boundary: " +
		"xs: []int is not in the value model (use nil, bool, int64, float64, string, []byte, []any or map[string]any)",
	"when": "module_error: method when returned a result that cannot cross the boundary: " +
		"meta.at: time.Time is not in the value model (use nil, bool, int64, float64, string, []byte, []any or map[string]any)",
}
