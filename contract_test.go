package hotmod_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

type quoteIn struct {
	SKU string `hotmod:"sku,id=1,required"`
	Qty int64  `hotmod:"qty,id=2,default=1"`
}

type quoteOut struct {
	Total int64 `hotmod:"total,id=1"`
}

type quoteInCoupon struct {
	SKU    string `hotmod:"sku,id=1,required"`
	Qty    int64  `hotmod:"qty,id=2,default=1"`
	Coupon string `hotmod:"coupon,id=3"` // a new optional field: a minor change
}

type quoteInRequired struct {
	SKU string `hotmod:"sku,id=1,required"`
	Qty int64  `hotmod:"qty,id=2,required"` // was optional: a breaking change
}

func quoting(version string, f sdk.MethodDef) *sdk.Module {
	return sdk.New("quoting", version).Method(f)
}

func quoteV1() sdk.MethodDef {
	return sdk.Func("quote", func(_ context.Context, in quoteIn) (quoteOut, error) {
		return quoteOut{Total: 100 * in.Qty}, nil
	})
}

func quoteStrict() sdk.MethodDef {
	return sdk.Func("quote", func(_ context.Context, in quoteInRequired) (quoteOut, error) {
		return quoteOut{Total: 200 * in.Qty}, nil
	})
}

func TestBreakingChangeNeedsAMajorBump(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, quoting("1.0.0", quoteV1()))

	_, err := r.Register(context.Background(), quoting("1.1.0", quoteStrict()))
	if !errors.Is(err, hotmod.ErrIncompatible) || !strings.Contains(err.Error(), "quoting 1.0.0 → 1.1.0 is a minor bump") ||
		!strings.Contains(err.Error(), "qty") {
		t.Fatalf("breaking minor bump: %v", err)
	}
	// 1.0.0 keeps serving, and is what plain "quoting" still routes to.
	out, err := hotmod.Call[quoteOut](context.Background(), r, "quoting", "quote", quoteIn{SKU: "tea", Qty: 1})
	if err != nil || out.Total != 100 {
		t.Fatalf("after the refusal: %+v, %v", out, err)
	}

	// The same change under a major bump is fine.
	mustRegister(t, r, quoting("2.0.0", quoteStrict()))
	// And an additive change needs only a minor bump.
	mustRegister(t, r, quoting("1.1.0", sdk.Func("quote", func(_ context.Context, in quoteInCoupon) (quoteOut, error) {
		return quoteOut{Total: 100 * in.Qty}, nil
	})))
}

func TestAllowBreaking(t *testing.T) {
	r := newRegistry(t, hotmod.WithAllowBreaking())
	mustRegister(t, r, quoting("1.0.0", quoteV1()))
	mustRegister(t, r, quoting("1.1.0", quoteStrict()))
}

func TestCall(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, quoting("1.0.0", quoteV1()))
	ctx := context.Background()
	out, err := hotmod.Call[quoteOut](ctx, r, "quoting@^1", "quote", quoteIn{SKU: "tea", Qty: 3})
	if err != nil || out.Total != 300 {
		t.Fatalf("Call = %+v, %v", out, err)
	}
	// A result that does not fit the caller's type is the module's contract
	// changing under the caller, not bad params.
	type wrong struct {
		Total string `hotmod:"total,id=1"`
	}
	if _, err := hotmod.Call[wrong](ctx, r, "quoting", "quote", quoteIn{SKU: "tea"}); !errors.Is(err, hotmod.ErrIncompatible) {
		t.Fatalf("mismatched result type: %v", err)
	}
	// Params the method refuses come back as bad_params.
	type noSKU struct {
		Qty int64 `hotmod:"qty,id=2"`
	}
	if _, err := hotmod.Call[quoteOut](ctx, r, "quoting", "quote", noSKU{Qty: 2}); !errors.Is(err, hotmod.ErrBadParams) {
		t.Fatalf("missing sku: %v", err)
	}
}
