package hotmod_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

type sumParams struct {
	A int64 `hotmod:"a,id=1,required"`
	B int64 `hotmod:"b,id=2,required"`
}

type sumResult struct {
	Sum int64 `hotmod:"sum,id=1"`
}

// Call takes and returns structs, maps, or one of each.
func TestCallWithStructsAndMaps(t *testing.T) {
	ctx := context.Background()
	reg := hotmod.New()
	defer reg.Close(ctx)
	m := sdk.New("adder", "1.0.0").Method(sdk.Func("add", func(_ context.Context, p sumParams) (sumResult, error) {
		return sumResult{Sum: p.A + p.B}, nil
	}))
	if _, err := reg.Register(ctx, m); err != nil {
		t.Fatal(err)
	}
	s, err := hotmod.Call[sumResult](ctx, reg, "adder", "add", sumParams{A: 1, B: 2})
	if err != nil || s.Sum != 3 {
		t.Fatalf("struct → struct: %+v, %v", s, err)
	}
	mp, err := hotmod.Call[map[string]any](ctx, reg, "adder", "add", map[string]any{"a": int64(2), "b": int64(5)})
	if err != nil || !reflect.DeepEqual(mp, map[string]any{"sum": int64(7)}) {
		t.Fatalf("map → map: %#v, %v", mp, err)
	}
	s, err = hotmod.Call[sumResult](ctx, reg, "adder", "add", map[string]any{"a": int64(4), "b": int64(4)})
	if err != nil || s.Sum != 8 {
		t.Fatalf("map → struct: %+v, %v", s, err)
	}
	mp, err = hotmod.Call[map[string]any](ctx, reg, "adder", "add", sumParams{A: 10, B: 1})
	if err != nil || mp["sum"] != int64(11) {
		t.Fatalf("struct → map: %#v, %v", mp, err)
	}
	if _, err := hotmod.Call[map[string]any](ctx, reg, "adder", "add", map[string]any{"a": "x"}); !errorsIsBadParams(err) {
		t.Fatalf("bad params through a map: %v", err)
	}
}

func errorsIsBadParams(err error) bool { return errors.Is(err, hotmod.ErrBadParams) }
