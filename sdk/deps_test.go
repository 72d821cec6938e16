package sdk

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// hostFunc is a Host made of a function.
type hostFunc func(ctx context.Context, target, method string, params map[string]any) (map[string]any, error)

func (f hostFunc) Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	return f(ctx, target, method, params)
}

func TestDeclarationMistakes(t *testing.T) {
	m := New("shop", "1.0.0").Handle("x", addDynamic).
		Requires("Geo", "^1").
		Requires("geo", "").
		Requires("stock", "^1").RequiresCapability("stock", "^2").
		Provides("pay ments", "1.0.0").
		Provides("payments", "1").
		Provides("tax", "1.0.0").Provides("tax", "1.1.0")
	err := m.Validate()
	for _, want := range []string{
		`Requires("Geo", "^1"): "Geo" is not a module name`,
		`requirement "geo": "" is not a version range`,
		`"stock" is required twice`,
		`Provides("pay ments", "1.0.0"): "pay ments" is not a capability name`,
		`Provides("payments", "1"): "1" is not a semantic version`,
		`capability "tax" is provided twice`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v\nwant it to contain %s", err, want)
		}
	}
}

func TestManifestListsRequirementsSorted(t *testing.T) {
	man := New("shop", "1.0.0").Handle("x", addDynamic).
		RequiresCapability("tax", "~1.2").Requires("geo", "^1.2").Provides("ordering", "2.0.0").Provides("basket", "1.0.0").
		Manifest()
	var got []string
	for _, r := range man.Requires {
		got = append(got, r.String())
	}
	if strings.Join(got, ", ") != "geo ^1.2, tax ~1.2" || man.Requires[1].Capability != "tax" {
		t.Errorf("requires: %v", man.Requires)
	}
	if man.Provides[0] != (Provided{"basket", "1.0.0"}) || man.Provides[1] != (Provided{"ordering", "2.0.0"}) {
		t.Errorf("provides: %v", man.Provides)
	}
	if man.Fingerprint != New("shop", "1.0.0").Handle("x", addDynamic).Manifest().Fingerprint {
		t.Error("requirements changed the fingerprint, which covers only the methods")
	}
}

// TestHostHandle checks that the handle Init's context carries reaches every
// call's context, typed and dynamic, in place of whatever handle the
// caller's context carried.
func TestHostHandle(t *testing.T) {
	var seen []string
	host := hostFunc(func(_ context.Context, target, method string, params map[string]any) (map[string]any, error) {
		seen = append(seen, target+"."+method)
		return map[string]any{"a": params["a"], "b": int64(2)}, nil
	})
	m := New("shop", "1.0.0").Requires("geo", "*").
		Handle("dyn", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			return Call(ctx, "geo", "where", map[string]any{"a": int64(1)})
		}).
		Method(Func("typed", func(ctx context.Context, in pair) (pair, error) {
			return CallAs[pair](ctx, "geo", "typed", in)
		}))

	if _, err := m.Invoke(context.Background(), "dyn", nil); !errors.Is(err, ErrUndeclared) ||
		!strings.Contains(err.Error(), "no host in this context") {
		t.Fatalf("before Init: %v", err)
	}
	if err := m.Init(WithHost(context.Background(), host), nil); err != nil {
		t.Fatal(err)
	}
	other := WithHost(context.Background(), hostFunc(func(context.Context, string, string, map[string]any) (map[string]any, error) {
		return nil, errors.New("the caller's handle was used")
	}))
	if out, err := m.Invoke(other, "dyn", nil); err != nil || out["a"] != int64(1) {
		t.Fatalf("dyn = %v, %v", out, err)
	}
	params, _ := EncodeCBOR(pair{A: 5})
	res, err := m.InvokeCBOR(other, "typed", params)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := DecodeCBOR[pair](res); err != nil || out != (pair{A: 5, B: 2}) {
		t.Fatalf("typed = %v, %v", out, err)
	}
	if strings.Join(seen, " ") != "geo.where geo.typed" {
		t.Fatalf("host saw %v", seen)
	}
}

type pair struct {
	A int64 `hotmod:"a,id=1"`
	B int64 `hotmod:"b,id=2"`
}
