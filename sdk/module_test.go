package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk/cbor"
)

type addIn struct {
	A int64 `hotmod:"a,id=1,required"`
	B int64 `hotmod:"b,id=2,required"`
}

type addOut struct {
	Sum int64 `hotmod:"sum,id=1"`
}

func add(_ context.Context, in addIn) (addOut, error) {
	if in.A == 13 {
		return addOut{}, Errorf(CodeModule, "13 is unlucky")
	}
	return addOut{Sum: in.A + in.B}, nil
}

func addDynamic(_ context.Context, p map[string]any) (map[string]any, error) {
	a, err := Int(p, "a")
	if err != nil {
		return nil, err
	}
	b, err := Int(p, "b")
	if err != nil {
		return nil, err
	}
	return map[string]any{"sum": a + b}, nil
}

type hugeOut struct {
	N uint64 `hotmod:"n,id=1"`
}

func adder() *Module {
	return New("adder", "1.0.0").
		Method(Func("add", add, Doc("a + b"))).
		Handle("add_dynamic", addDynamic).
		Method(Func("huge", func(context.Context, struct{}) (hugeOut, error) { return hugeOut{math.MaxUint64}, nil }))
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTypedMethod(t *testing.T) {
	m := adder()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name   string
		method string
		params map[string]any
		want   map[string]any
		err    string
	}{
		{"typed", "add", map[string]any{"a": int64(1), "b": int64(2)}, map[string]any{"sum": int64(3)}, ""},
		{"dynamic", "add_dynamic", map[string]any{"a": int64(1), "b": int64(2)}, map[string]any{"sum": int64(3)}, ""},
		{"typed, bad params", "add", map[string]any{"a": "1", "b": int64(2)}, nil, `bad_params: "a": want integer, got string`},
		{"typed, missing", "add", map[string]any{"a": int64(1)}, nil, `bad_params: "b" is required (an integer)`},
		{"typed, no params", "add", nil, nil, `bad_params: "a" is required (an integer)`},
		{"typed, the method's error", "add", map[string]any{"a": int64(13), "b": int64(0)}, nil, "module_error: 13 is unlucky"},
		{"typed, a result outside the value model", "huge", nil, nil,
			`module_error: method huge returned a result that cannot cross the boundary: "n": 18446744073709551615 does not fit in the value model's int64`},
		{"unknown method", "sub", nil, nil, `unknown_method: module adder has no method "sub" (it has: add, add_dynamic, huge)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The map entry point.
			got, err := m.Invoke(ctx, tc.method, tc.params)
			check := func(path string, got map[string]any, err error) {
				t.Helper()
				if tc.err != "" {
					if err == nil || err.Error() != tc.err {
						t.Errorf("%s: got error %v, want %s", path, err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s: got %v, want %v", path, got, tc.want)
				}
			}
			check("Invoke", got, err)

			// The CBOR entry point gives the same.
			var params []byte
			if tc.params != nil {
				params = mustCBOR(t, tc.params)
			}
			raw, err := m.InvokeCBOR(ctx, tc.method, params)
			var res map[string]any
			if err == nil {
				if res, err = cbor.UnmarshalMap(raw); err != nil {
					t.Fatalf("InvokeCBOR returned bad CBOR: %v", err)
				}
			}
			check("InvokeCBOR", res, err)
		})
	}
}

func TestInvokeCBORBadInput(t *testing.T) {
	m := adder()
	ctx := context.Background()
	for _, method := range []string{"add", "add_dynamic"} {
		for name, data := range map[string][]byte{
			"garbage":   {0xff, 0x00},
			"an array":  cbor.AppendArrayHeader(nil, 0),
			"truncated": mustCBOR(t, map[string]any{"a": int64(1), "b": int64(2)})[:5],
		} {
			_, err := m.InvokeCBOR(ctx, method, data)
			if !errors.Is(err, ErrBadParams) {
				t.Errorf("%s with %s: got %v, want bad_params", method, name, err)
			}
		}
	}
	// A dynamic method's result outside the value model.
	bad := New("bad", "1.0.0").Handle("m", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"c": make(chan int)}, nil
	})
	if _, err := bad.InvokeCBOR(ctx, "m", nil); err == nil || !strings.HasPrefix(err.Error(), "module_error: method m returned a result that cannot cross the boundary: c: chan int is not in the value model") {
		t.Errorf("got %v", err)
	}
}

func TestManifest(t *testing.T) {
	m := adder()
	man := m.Manifest()
	if len(man.Methods) != 3 || man.Methods[0].Name != "add" || man.Methods[1].Name != "add_dynamic" {
		t.Fatalf("methods: %+v", man.Methods)
	}
	typed, dyn := man.Methods[0], man.Methods[1]
	if typed.Params.String() != "{a!: int64, b!: int64}" || typed.Result.String() != "{sum: int64}" || typed.Doc != "a + b" {
		t.Errorf("add: %s → %s (%q)", typed.Params, typed.Result, typed.Doc)
	}
	if !dyn.Params.IsDynamic() || !dyn.Result.IsDynamic() || typed.Params.IsDynamic() {
		t.Errorf("dynamic: %s → %s", dyn.Params, dyn.Result)
	}
	b, _ := json.Marshal(dyn)
	if string(b) != `{"name":"add_dynamic","params":{"type":"map","items":{"type":"any"}},"result":{"type":"map","items":{"type":"any"}},"fingerprint":"`+dyn.Fingerprint+`"}` {
		t.Errorf("JSON: %s", b)
	}

	// The manifest is a copy.
	man.Methods[0].Params.Fields[0].Name = "changed"
	if m.Manifest().Methods[0].Params.Fields[0].Name != "a" {
		t.Error("changing a manifest changed the module")
	}

	// An option cannot change the schemas.
	sneaky := New("x", "1.0.0").Method(Func("add", add, func(mi *MethodInfo) { mi.Params = DynamicSchema() }))
	if sneaky.Manifest().Methods[0].Params.IsDynamic() {
		t.Error("an option replaced the schema")
	}
}

func TestFingerprints(t *testing.T) {
	fp := func(m *Module) Manifest { t.Helper(); return m.Manifest() }
	base := fp(adder())

	if got := base.Methods[0].Fingerprint; len(got) != 64 {
		t.Fatalf("fingerprint %q is not sha256 hex", got)
	}

	// The version, the SDK and docs are not part of the contract.
	other := fp(New("adder", "9.9.9").
		Method(Func("add", add, Doc("other words"))).
		Handle("add_dynamic", addDynamic).
		Method(Func("huge", func(context.Context, struct{}) (hugeOut, error) { return hugeOut{}, nil })))
	if other.Fingerprint != base.Fingerprint {
		t.Error("version or docs changed the fingerprint")
	}

	type addIn2 struct {
		A int64 `hotmod:"a,id=1,required"`
		B int64 `hotmod:"b,id=2,required"`
		C int64 `hotmod:"c,id=3"`
	}
	changed := fp(New("adder", "1.0.0").
		Method(Func("add", func(context.Context, addIn2) (addOut, error) { return addOut{}, nil })).
		Handle("add_dynamic", addDynamic).
		Method(Func("huge", func(context.Context, struct{}) (hugeOut, error) { return hugeOut{}, nil })))
	if changed.Fingerprint == base.Fingerprint || changed.Methods[0].Fingerprint == base.Methods[0].Fingerprint {
		t.Error("a new field did not change the fingerprints")
	}
	if changed.Methods[1].Fingerprint != base.Methods[1].Fingerprint {
		t.Error("an unchanged method's fingerprint changed")
	}
	renamed := fp(New("adder2", "1.0.0").
		Method(Func("add", add)).
		Handle("add_dynamic", addDynamic).
		Method(Func("huge", func(context.Context, struct{}) (hugeOut, error) { return hugeOut{}, nil })))
	if renamed.Fingerprint == base.Fingerprint {
		t.Error("the module's name is part of its contract")
	}

	// A zero default is no default.
	type zeroDefault struct {
		A int64  `hotmod:"a,id=1,default=0"`
		S string `hotmod:"s,id=2,default="`
	}
	type noDefault struct {
		A int64  `hotmod:"a,id=1"`
		S string `hotmod:"s,id=2"`
	}
	z, _ := SchemaOf[zeroDefault]()
	n, _ := SchemaOf[noDefault]()
	if methodFingerprint(z, z) != methodFingerprint(n, n) {
		t.Error("default=0 and no default hash differently")
	}
}

// TestFingerprintPinned pins the canonical encoding: fingerprints are stored
// (CI, registries) and compared across builds, so changing them must be a
// decision, not an accident.
func TestFingerprintPinned(t *testing.T) {
	type in struct {
		SKU    string  `hotmod:"sku,id=1,required"`
		Coupon string  `hotmod:"coupon,id=3,default=NONE,alias=code"`
		Ratio  float64 `hotmod:"ratio,id=2,default=1.5"`
	}
	s, err := SchemaOf[in]()
	if err != nil {
		t.Fatal(err)
	}
	enc := canonical(map[string]any{"params": s.canonical(), "result": DynamicSchema().canonical()})
	// The canonical form, in CBOR diagnostic notation:
	// {"params": {"type": "object", "fields": [
	//    {"id": 1, "name": "sku", "type": "string", "required": true},
	//    {"id": 2, "name": "ratio", "type": "float64", "default": 1.5},
	//    {"id": 3, "name": "coupon", "type": "string", "aliases": ["code"], "default": "NONE"}]},
	//  "result": {"type": "map", "items": {"type": "any"}}}
	back, err := cbor.Unmarshal(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"params": map[string]any{"type": "object", "fields": []any{
			map[string]any{"id": int64(1), "name": "sku", "type": "string", "required": true},
			map[string]any{"id": int64(2), "name": "ratio", "type": "float64", "default": 1.5},
			map[string]any{"id": int64(3), "name": "coupon", "type": "string", "aliases": []any{"code"}, "default": "NONE"},
		}},
		"result": map[string]any{"type": "map", "items": map[string]any{"type": "any"}},
	}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("canonical form:\ngot  %v\nwant %v", back, want)
	}
	// The same bytes as github.com/fxamacker/cbor/v2's CoreDetEncOptions
	// encoding of want: the fingerprint can be recomputed with any RFC 8949
	// implementation.
	const pinned = "b98407baaed4869d459a6894809e10e6d2ddf3ec2f74fb1f58a9dd3e5e642630"
	if got := methodFingerprint(s, DynamicSchema()); got != pinned {
		t.Errorf("fingerprint %s, pinned %s", got, pinned)
	}
}

// A dynamic method's result outside the value model is the same
// module_error through Invoke (native, builtin) as through InvokeCBOR (wasm,
// process): the path and the Go type, never a Go value passed through.
func TestInvokeResultOutsideValueModel(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		out  map[string]any
		want string
	}{
		"time":    {map[string]any{"at": time.Unix(0, 0)}, "at: time.Time is not in the value model"},
		"[]int":   {map[string]any{"xs": []int{1}}, "xs: []int is not in the value model"},
		"nested":  {map[string]any{"a": []any{map[string]any{"b": struct{}{}}}}, "a[0].b: struct {} is not in the value model"},
		"too big": {map[string]any{"n": uint64(1) << 63}, "n: 9223372036854775808 does not fit in int64"},
	} {
		mod := New("bad", "1.0.0").Handle("m", func(context.Context, map[string]any) (map[string]any, error) { return c.out, nil })
		_, err := mod.Invoke(ctx, "m", nil)
		if !errors.Is(err, ErrModule) || !strings.Contains(err.Error(), "method m returned a result that cannot cross the boundary: "+c.want) {
			t.Errorf("%s: got %v, want module_error naming %q", name, err, c.want)
		}
		if _, cerr := mod.InvokeCBOR(ctx, "m", nil); !errors.Is(cerr, ErrModule) || err == nil || cerr.Error() != err.Error() {
			t.Errorf("%s through InvokeCBOR: %v; want the words of Invoke: %v", name, cerr, err)
		}
	}
	// Go's other integer types are in the model on the way out.
	ok := New("ok", "1.0.0").Handle("m", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"n": 3, "u": uint16(4), "f": float32(1.5)}, nil
	})
	if out, err := ok.Invoke(ctx, "m", nil); err != nil || out["n"] != 3 {
		t.Errorf("got %v, %v", out, err)
	}
}
