// Command pricing is a module with several methods, typed params and error
// paths: it quotes orders from a small price list.
//
//	hotmod invoke pricing quote '{"sku":"tea","qty":3,"coupon":"TENOFF"}'
//	→ {"sku":"tea","qty":3,"unit_cents":450,"subtotal_cents":1350,"discount_cents":135,"total_cents":1215}
package main

import (
	"context"
	"sort"
	"strings"

	"github.com/hotmod/hotmod/sdk"
)

const version = "1.0.0"

var Module = sdk.New("pricing", version).
	Handle("quote", quote, sdk.Doc(`{"sku": string, "qty": int, "coupon"?: string} → price in cents`)).
	Handle("catalog", catalog, sdk.Doc(`{} → {"items": [{"sku", "unit_cents"}]}`)).
	OnCheck(func(context.Context) error {
		// The self-test the host runs before routing calls here.
		_, err := price("tea", 1, "")
		return err
	})

// unitCents is the price list, in cents.
var unitCents = map[string]int64{"tea": 450, "coffee": 380, "cake": 520}

// coupons maps a coupon code to its discount in percent.
var coupons = map[string]int64{"TENOFF": 10, "HALF": 50}

type priced struct {
	unit, subtotal, discount int64
}

func price(sku string, qty int64, coupon string) (priced, error) {
	unit, ok := unitCents[sku]
	if !ok {
		return priced{}, sdk.Errorf(sdk.CodeBadParams, "unknown sku %q (known: %s)", sku, strings.Join(skus(), ", "))
	}
	if qty <= 0 || qty > 10_000 {
		return priced{}, sdk.Errorf(sdk.CodeBadParams, "qty must be between 1 and 10000, got %d", qty)
	}
	p := priced{unit: unit, subtotal: unit * qty}
	if coupon != "" {
		pct, ok := coupons[strings.ToUpper(coupon)]
		if !ok {
			return priced{}, sdk.Errorf(sdk.CodeBadParams, "coupon %q is not valid", coupon)
		}
		p.discount = p.subtotal * pct / 100
	}
	return p, nil
}

func quote(_ context.Context, params map[string]any) (map[string]any, error) {
	sku, err := sdk.String(params, "sku")
	if err != nil {
		return nil, err
	}
	qty, err := sdk.Int(params, "qty")
	if err != nil {
		return nil, err
	}
	coupon := ""
	if _, ok := params["coupon"]; ok {
		if coupon, err = sdk.String(params, "coupon"); err != nil {
			return nil, err
		}
	}
	p, err := price(sku, qty, coupon)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"sku": sku, "qty": qty, "unit_cents": p.unit, "subtotal_cents": p.subtotal,
		"discount_cents": p.discount, "total_cents": p.subtotal - p.discount,
	}, nil
}

func catalog(context.Context, map[string]any) (map[string]any, error) {
	items := make([]any, 0, len(unitCents))
	for _, sku := range skus() {
		items = append(items, map[string]any{"sku": sku, "unit_cents": unitCents[sku]})
	}
	return map[string]any{"items": items}, nil
}

func skus() []string {
	out := make([]string, 0, len(unitCents))
	for s := range unitCents {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func main() { sdk.Main(Module) }
