// Package shapes is module "shapes" 1.0.0, whose dynamic methods return Go
// values outside the value model — "ints" an []int, "when" a time.Time
// nested in a map — and "converted" the same values passed through
// sdk.ToParams. Tests register it as a builtin module and build this very
// file for the other transports (plugintest.OutsideModelSource), to show
// that such a result is the same module_error, in the same words, on every
// transport.
package shapes

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
