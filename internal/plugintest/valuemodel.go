package plugintest

import (
	_ "embed"
	"strings"
)

//go:embed shapes/shapes.go
var shapesGo string

// OutsideModelSource returns package shapes (see its doc) as the main.go of
// a module artifact: build it for any transport with Source, then Build,
// BuildWasm or BuildProcess; register shapes.Module for the builtin one.
func OutsideModelSource() string {
	return strings.Replace(shapesGo, "\npackage shapes\n", "\npackage main\n", 1) + "\nfunc main() { sdk.Main(Module) }\n"
}

// OutsideModelErrors are the messages of the errors shapes' methods "ints"
// and "when" give, on every transport.
var OutsideModelErrors = map[string]string{
	"ints": "module_error: method ints returned a result that cannot cross the boundary: " +
		"xs: []int is not in the value model (use nil, bool, int64, float64, string, []byte, []any or map[string]any)",
	"when": "module_error: method when returned a result that cannot cross the boundary: " +
		"meta.at: time.Time is not in the value model (use nil, bool, int64, float64, string, []byte, []any or map[string]any)",
}
