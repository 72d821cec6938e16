package hotmod_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// The typed method of the README's pricing module.

type QuoteParams struct {
	SKU    string `hotmod:"sku,id=1,required"`
	Qty    int64  `hotmod:"qty,id=2,required"`
	Coupon string `hotmod:"coupon,id=3,default=NONE,alias=code|voucher"`
}

type Quote struct {
	TotalCents int64 `hotmod:"total_cents,id=1"`
}

func quote(_ context.Context, in QuoteParams) (Quote, error) {
	total := 450 * in.Qty
	if in.Coupon == "HALF" {
		total /= 2
	}
	return Quote{TotalCents: total}, nil
}

// Example is the README's library snippet (section "Using the library"),
// word for word: TestReadmeSnippetIsTheExample fails when they drift apart.
func Example() {
	ctx := context.Background()
	reg := hotmod.New()
	defer reg.Close(ctx)

	// A module compiled into the host. Artifacts are loaded from files:
	// reg.Load(ctx, "plugins/pricing.so"), or reg.Watch(ctx, "plugins")
	// to load and hot-swap everything that appears in a directory.
	pricing := sdk.New("pricing", "1.1.0").Method(sdk.Func("quote", quote))
	if _, err := reg.Register(ctx, pricing); err != nil {
		log.Fatal(err)
	}

	out, err := reg.Invoke(ctx, "pricing@^1", "quote", map[string]any{"sku": "tea", "qty": int64(2)})
	fmt.Println(out, err)

	_, err = reg.Invoke(ctx, "pricing", "quote", map[string]any{"sku": "tea"})
	fmt.Println(errors.Is(err, hotmod.ErrBadParams), err)

	q, err := hotmod.Call[Quote](ctx, reg, "pricing", "quote", QuoteParams{SKU: "tea", Qty: 2, Coupon: "HALF"}) // typed
	fmt.Println(q.TotalCents, err)
	// Output:
	// map[total_cents:900] <nil>
	// true bad_params: "qty" is required (an integer)
	// 450 <nil>
}
