// Command checkout is a module that depends on another one: it totals a
// basket by asking pricing for a quote of each line, through the host.
//
//	hotmod invoke checkout total '{"lines":[{"sku":"tea","qty":2},{"sku":"cake","qty":1}],"coupon":"TENOFF"}'
//	→ {"lines":2,"total_cents":1278}
//
// Its manifest requires pricing ^1.1 (the typed quote arrived in 1.1.0). The
// host activates checkout only while such a pricing is active — loaded
// first, it waits ("waiting for pricing ^1.1") — refuses to unload that
// pricing while checkout needs it, and lets checkout call pricing and
// nothing else, with sdk.Call or sdk.CallAs.
package main

import (
	"context"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("checkout", "1.0.0").
	Requires("pricing", "^1.1").
	Method(sdk.Func("total", total, sdk.Doc("totals a basket, one pricing quote per line"), sdk.Timeout(2*time.Second)))

// Basket is total's params.
type Basket struct {
	Lines  []Line `hotmod:"lines,id=1,required"`
	Coupon string `hotmod:"coupon,id=2,default=NONE"`
}

// Line is one line of a basket.
type Line struct {
	SKU string `hotmod:"sku,id=1,required"`
	Qty int64  `hotmod:"qty,id=2,required"`
}

// Total is total's result.
type Total struct {
	Lines      int64 `hotmod:"lines,id=1"`
	TotalCents int64 `hotmod:"total_cents,id=2"`
}

// quoteParams and quote are the parts of pricing's quote that checkout uses.
type quoteParams struct {
	SKU    string `hotmod:"sku,id=1"`
	Qty    int64  `hotmod:"qty,id=2"`
	Coupon string `hotmod:"coupon,id=3"`
}

type quote struct {
	TotalCents int64 `hotmod:"total_cents,id=6"`
}

func total(ctx context.Context, b Basket) (Total, error) {
	var t Total
	for _, l := range b.Lines {
		q, err := sdk.CallAs[quote](ctx, "pricing", "quote", quoteParams{SKU: l.SKU, Qty: l.Qty, Coupon: b.Coupon})
		if err != nil {
			return Total{}, err
		}
		t.Lines++
		t.TotalCents += q.TotalCents
	}
	return t, nil
}

func main() { sdk.Main(Module) }
