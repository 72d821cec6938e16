package main

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

func TestQuote(t *testing.T) {
	if err := Module.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Module.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		params map[string]any
		want   map[string]any
		err    string
	}{
		{"coupon", map[string]any{"sku": "tea", "qty": int64(3), "coupon": "TENOFF"},
			map[string]any{"sku": "tea", "qty": int64(3), "unit_cents": int64(450), "subtotal_cents": int64(1350),
				"discount_cents": int64(135), "total_cents": int64(1215)}, ""},
		{"no coupon: the default", map[string]any{"sku": "cake", "qty": int64(1)},
			map[string]any{"sku": "cake", "qty": int64(1), "unit_cents": int64(520), "subtotal_cents": int64(520),
				"discount_cents": int64(0), "total_cents": int64(520)}, ""},
		{"the old name of coupon", map[string]any{"sku": "tea", "qty": 2.0, "code": "half"},
			map[string]any{"sku": "tea", "qty": int64(2), "unit_cents": int64(450), "subtotal_cents": int64(900),
				"discount_cents": int64(450), "total_cents": int64(450)}, ""},
		{"unknown sku", map[string]any{"sku": "beer", "qty": int64(1)}, nil, `bad_params: unknown sku "beer" (known: cake, coffee, tea)`},
		{"qty range", map[string]any{"sku": "tea", "qty": int64(0)}, nil, "bad_params: qty must be between 1 and 10000, got 0"},
		{"bad coupon", map[string]any{"sku": "tea", "qty": int64(1), "coupon": "FREE"}, nil, `bad_params: coupon "FREE" is not valid`},
		{"missing sku", map[string]any{"qty": int64(1)}, nil, `bad_params: "sku" is required (a string)`},
		{"mistyped qty", map[string]any{"sku": "tea", "qty": "1"}, nil, `bad_params: "qty": want integer, got string`},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The native transport's entry point, then the byte transports'.
			got, err := Module.Invoke(ctx, "quote", tc.params)
			data, _ := cbor.Marshal(tc.params)
			raw, rawErr := Module.InvokeCBOR(ctx, "quote", data)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || rawErr == nil || rawErr.Error() != tc.err {
					t.Fatalf("got %v and %v, want %s", err, rawErr, tc.err)
				}
				if !errors.Is(err, sdk.ErrBadParams) {
					t.Errorf("%v is not bad_params", err)
				}
				return
			}
			if err != nil || rawErr != nil {
				t.Fatal(err, rawErr)
			}
			fromRaw, err := cbor.UnmarshalMap(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(fromRaw, tc.want) {
				t.Errorf("got %v and %v, want %v", got, fromRaw, tc.want)
			}
		})
	}
}

func TestQuoteSchema(t *testing.T) {
	man := Module.Manifest()
	want := `{sku!: string, qty!: int64, coupon: string = "NONE" (alias code, voucher)}`
	if man.Methods[1].Name != "quote" || man.Methods[1].Params.String() != want {
		t.Errorf("quote params: %s, want %s", man.Methods[1].Params, want)
	}
	if !man.Methods[0].Params.IsDynamic() {
		t.Errorf("catalog is dynamic: %s", man.Methods[0].Params)
	}
}
