package sdk_test

import (
	"context"
	"fmt"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

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

func ExampleFunc() {
	m := sdk.New("pricing", "1.1.0").Method(sdk.Func("quote", quote))
	if err := m.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Manifest().Methods[0].Params)

	ctx := context.Background()
	out, err := m.Invoke(ctx, "quote", map[string]any{"sku": "tea", "qty": int64(2), "code": "HALF"})
	fmt.Println(out, err)
	_, err = m.Invoke(ctx, "quote", map[string]any{"sku": "tea", "qty": "2"})
	fmt.Println(err)
	// Output:
	// {sku!: string, qty!: int64, coupon: string = "NONE" (alias code, voucher)}
	// map[total_cents:450] <nil>
	// bad_params: "qty": want integer, got string
}

func ExampleModule_InvokeCBOR() {
	m := sdk.New("pricing", "1.1.0").Method(sdk.Func("quote", quote))
	params, _ := sdk.EncodeCBOR(QuoteParams{SKU: "tea", Qty: 3})
	res, err := m.InvokeCBOR(context.Background(), "quote", params)
	if err != nil {
		fmt.Println(err)
		return
	}
	q, err := sdk.DecodeCBOR[Quote](res)
	fmt.Println(q.TotalCents, err)
	v, _ := cbor.Unmarshal(res)
	fmt.Println(v)
	// Output:
	// 1350 <nil>
	// map[total_cents:1350]
}

// A host calls a typed method with its own structs: Encode the params,
// Invoke, Decode the result.
func ExampleDecode() {
	m := sdk.New("pricing", "1.1.0").Method(sdk.Func("quote", quote))
	params, _ := sdk.Encode(QuoteParams{SKU: "tea", Qty: 1, Coupon: "HALF"})
	res, _ := m.Invoke(context.Background(), "quote", params)
	q, err := sdk.Decode[Quote](res)
	fmt.Println(q.TotalCents, err)
	// Output: 225 <nil>
}
