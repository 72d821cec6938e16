package main

import (
	"context"
	"errors"
	"testing"

	"github.com/hotmod/hotmod/sdk"
)

// prices stands in for the host: it answers pricing.quote from a table and
// refuses anything else, as a host refuses what a module did not declare.
type prices map[string]int64

func (p prices) Invoke(_ context.Context, target, method string, params map[string]any) (map[string]any, error) {
	if target != "pricing" || method != "quote" {
		return nil, sdk.Errorf(sdk.CodeUndeclared, "%s.%s", target, method)
	}
	sku, _ := sdk.String(params, "sku")
	qty, _ := sdk.Int(params, "qty")
	if params["coupon"] != "NONE" {
		return nil, sdk.Errorf(sdk.CodeBadParams, "coupon %v", params["coupon"])
	}
	return map[string]any{"total_cents": p[sku] * qty}, nil
}

func TestTotal(t *testing.T) {
	ctx := sdk.WithHost(context.Background(), prices{"tea": 450, "cake": 520})
	out, err := Module.Invoke(ctx, "total", map[string]any{"lines": []any{
		map[string]any{"sku": "tea", "qty": int64(2)},
		map[string]any{"sku": "cake", "qty": int64(1)},
	}})
	if err != nil || out["total_cents"] != int64(1420) || out["lines"] != int64(2) {
		t.Fatalf("total = %v, %v", out, err)
	}
	man := Module.Manifest()
	if len(man.Requires) != 1 || man.Requires[0].String() != "pricing ^1.1" || man.Methods[0].Timeout != "2s" {
		t.Fatalf("manifest: requires %v, timeout %q", man.Requires, man.Methods[0].Timeout)
	}
}

func TestTotalWithoutHost(t *testing.T) {
	_, err := Module.Invoke(context.Background(), "total", map[string]any{"lines": []any{
		map[string]any{"sku": "tea", "qty": int64(1)},
	}})
	if !errors.Is(err, sdk.ErrUndeclared) {
		t.Fatalf("outside a host: %v", err)
	}
}
