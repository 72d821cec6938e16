// Command pricing is a module with a typed method, a dynamic one and error
// paths: it quotes orders from a small price list.
//
//	hotmod invoke pricing quote '{"sku":"tea","qty":3,"coupon":"TENOFF"}'
//	→ {"sku":"tea","qty":3,"unit_cents":450,"subtotal_cents":1350,"discount_cents":135,"total_cents":1215}
//
// quote is typed: its params and result are Go structs whose hotmod tags give
// each field a wire name, a stable id, and whether it is required, has a
// default or other accepted names. The SDK derives the method's schema from
// them (see `hotmod contract export`) and decodes params into QuoteParams
// before quote runs: a missing or mistyped field never reaches it.
// catalog stays dynamic: it takes and returns maps.
package main

import (
	"context"
	"sort"
	"strings"

	"github.com/hotmod/hotmod/sdk"
)

// 1.1.0: quote became typed, which the contract rules count as a minor
// change (see `hotmod contract diff`).
const version = "1.1.0"

var Module = sdk.New("pricing", version).
	Method(sdk.Func("quote", quote, sdk.Doc("prices an order of one item, in cents"))).
	Handle("catalog", catalog, sdk.Doc(`{} → {"items": [{"sku", "unit_cents"}]}`)).
	OnCheck(func(context.Context) error {
		// The self-test the host runs before routing calls here.
		_, err := price("tea", 1, noCoupon)
		return err
	})

// QuoteParams are quote's params.
type QuoteParams struct {
	SKU string `hotmod:"sku,id=1,required"`
	Qty int64  `hotmod:"qty,id=2,required"`
	// Coupon is a code from the coupon list; it was once called "code" (and
	// "voucher" in some callers), which are still accepted.
	Coupon string `hotmod:"coupon,id=3,default=NONE,alias=code|voucher"`
}

// Quote is quote's result.
type Quote struct {
	SKU           string `hotmod:"sku,id=1"`
	Qty           int64  `hotmod:"qty,id=2"`
	UnitCents     int64  `hotmod:"unit_cents,id=3"`
	SubtotalCents int64  `hotmod:"subtotal_cents,id=4"`
	DiscountCents int64  `hotmod:"discount_cents,id=5"`
	TotalCents    int64  `hotmod:"total_cents,id=6"`
}

// unitCents is the price list, in cents.
var unitCents = map[string]int64{"tea": 450, "coffee": 380, "cake": 520}

// coupons maps a coupon code to its discount in percent.
var coupons = map[string]int64{"TENOFF": 10, "HALF": 50}

// noCoupon is Coupon's default: no discount.
const noCoupon = "NONE"

func quote(_ context.Context, in QuoteParams) (Quote, error) {
	p, err := price(in.SKU, in.Qty, in.Coupon)
	if err != nil {
		return Quote{}, err
	}
	return Quote{SKU: in.SKU, Qty: in.Qty, UnitCents: p.unit, SubtotalCents: p.subtotal,
		DiscountCents: p.discount, TotalCents: p.subtotal - p.discount}, nil
}

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
	if coupon != noCoupon && coupon != "" {
		pct, ok := coupons[strings.ToUpper(coupon)]
		if !ok {
			return priced{}, sdk.Errorf(sdk.CodeBadParams, "coupon %q is not valid", coupon)
		}
		p.discount = p.subtotal * pct / 100
	}
	return p, nil
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
