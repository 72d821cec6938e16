package contract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/sdk"
)

// Schema builders for the tables.

func obj(fields ...sdk.Field) *sdk.Schema { return &sdk.Schema{Type: sdk.TypeObject, Fields: fields} }

func field(name string, id int, typ string, opts ...func(*sdk.Field)) sdk.Field {
	f := sdk.Field{Name: name, ID: id, Schema: sdk.Schema{Type: typ}}
	for _, o := range opts {
		o(&f)
	}
	return f
}

func required(f *sdk.Field) { f.Required = true }
func nullable(f *sdk.Field) { f.Nullable = true }

func def(v any) func(*sdk.Field) { return func(f *sdk.Field) { f.Default = v } }

func alias(names ...string) func(*sdk.Field) { return func(f *sdk.Field) { f.Aliases = names } }

func withItems(s *sdk.Schema) func(*sdk.Field) { return func(f *sdk.Field) { f.Items = s } }

func fields(fs ...sdk.Field) func(*sdk.Field) { return func(f *sdk.Field) { f.Fields = fs } }

func manifest(version string, methods ...sdk.MethodInfo) sdk.Manifest {
	return sdk.Manifest{Name: "pricing", Version: version, SDK: sdk.Version, Methods: methods}
}

func method(name string, params, result *sdk.Schema) sdk.MethodInfo {
	return sdk.MethodInfo{Name: name, Params: params, Result: result}
}

// lines renders changes as "class path: what" without the method, the side
// prefix ("params."/"result.") cut so one table row serves both sides.
func lines(cs []Change, side string) string {
	var out []string
	for _, c := range cs {
		path := strings.TrimPrefix(strings.TrimPrefix(c.Path, side), ".")
		out = append(out, fmt.Sprintf("%s %s: %s", c.Class, path, c.What))
	}
	return strings.Join(out, "\n")
}

// matches reports whether every line of got starts with the line of want.
func matches(got, want string) bool {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(g) != len(w) {
		return false
	}
	for i := range g {
		if !strings.HasPrefix(g[i], w[i]) {
			return false
		}
	}
	return true
}

// TestFieldRules runs every rule on both sides: a row's old and new fields
// are once a method's params, once its result.
func TestFieldRules(t *testing.T) {
	sku := field("sku", 1, sdk.TypeString, required)
	cases := []struct {
		name           string
		old, new       []sdk.Field
		params, result string // expected lines, each a prefix; "" for no change
	}{
		{"nothing", []sdk.Field{sku}, []sdk.Field{sku}, "", ""},
		{"field order is not a change", []sdk.Field{sku, field("a", 2, sdk.TypeBool)}, []sdk.Field{field("a", 2, sdk.TypeBool), sku}, "", ""},
		{"optional field added", []sdk.Field{sku}, []sdk.Field{sku, field("coupon", 2, sdk.TypeString)},
			"minor coupon: added", "minor coupon: added"},
		{"required field added", []sdk.Field{sku}, []sdk.Field{sku, field("qty", 2, sdk.TypeInt64, required)},
			"major qty: added as required", "minor qty: added"},
		{"field removed", []sdk.Field{sku, field("coupon", 2, sdk.TypeString)}, []sdk.Field{sku},
			"major coupon: removed: callers that send it are ignored", "major coupon: removed: callers that read it get nothing"},
		{"renamed, old name kept as an alias", []sdk.Field{sku, field("code", 2, sdk.TypeString)},
			[]sdk.Field{sku, field("coupon", 2, sdk.TypeString, alias("code"))},
			`minor coupon: renamed from "code", which stays an alias`, `major coupon: renamed from "code": results carry only the new name`},
		{"renamed, old name dropped", []sdk.Field{sku, field("code", 2, sdk.TypeString)}, []sdk.Field{sku, field("coupon", 2, sdk.TypeString)},
			`major coupon: renamed from "code" without keeping it as an alias`, `major coupon: renamed from "code"`},
		{"a new id for an old name is a removal and an addition", []sdk.Field{sku, field("coupon", 2, sdk.TypeString)},
			[]sdk.Field{sku, field("coupon", 3, sdk.TypeString)},
			"major coupon: removed\nminor coupon: added", "major coupon: removed\nminor coupon: added"},
		{"alias added", []sdk.Field{sku}, []sdk.Field{field("sku", 1, sdk.TypeString, required, alias("item"))},
			`minor sku: alias "item" added`, `patch sku: alias "item" added`},
		{"alias removed", []sdk.Field{field("sku", 1, sdk.TypeString, required, alias("item"))}, []sdk.Field{sku},
			`major sku: alias "item" removed`, `patch sku: alias "item" removed`},
		{"an alias becomes the name", []sdk.Field{field("sku", 1, sdk.TypeString, alias("item"))}, []sdk.Field{field("item", 1, sdk.TypeString, alias("sku"))},
			`minor item: renamed from "sku", which stays an alias`, `major item: renamed from "sku"`},
		{"made required", []sdk.Field{field("sku", 1, sdk.TypeString)}, []sdk.Field{sku},
			"major sku: made required", "patch sku: made required"},
		{"made optional", []sdk.Field{sku}, []sdk.Field{field("sku", 1, sdk.TypeString)},
			"minor sku: made optional", "patch sku: made optional"},
		{"made optional with a default", []sdk.Field{sku}, []sdk.Field{field("sku", 1, sdk.TypeString, def("tea"))},
			"minor sku: made optional", "patch sku: made optional"},
		{"default changed", []sdk.Field{field("qty", 1, sdk.TypeInt64, def(int64(1)))}, []sdk.Field{field("qty", 1, sdk.TypeInt64, def(int64(2)))},
			"major qty: default changed from 1 to 2: callers that leave it out get another value", "patch qty: default changed"},
		{"default set", []sdk.Field{field("c", 1, sdk.TypeString)}, []sdk.Field{field("c", 1, sdk.TypeString, def("NONE"))},
			`major c: default changed from none (the zero value) to "NONE"`, "patch c: default changed"},
		{"default cleared", []sdk.Field{field("c", 1, sdk.TypeBool, def(true))}, []sdk.Field{field("c", 1, sdk.TypeBool)},
			"major c: default changed from true to none", "patch c: default changed"},
		{"int widened", []sdk.Field{field("n", 1, sdk.TypeInt32)}, []sdk.Field{field("n", 1, sdk.TypeInt64)},
			"minor n: retyped from int32 to int64 (wider)", "major n: retyped from int32 to int64 (wider)"},
		{"uint widened to int", []sdk.Field{field("n", 1, sdk.TypeUint8)}, []sdk.Field{field("n", 1, sdk.TypeInt16)},
			"minor n: retyped from uint8 to int16 (wider)", "major n: retyped"},
		{"int narrowed", []sdk.Field{field("n", 1, sdk.TypeInt64)}, []sdk.Field{field("n", 1, sdk.TypeInt32)},
			"major n: retyped from int64 to int32 (narrower)", "minor n: retyped from int64 to int32 (narrower)"},
		{"int shifted", []sdk.Field{field("n", 1, sdk.TypeInt8)}, []sdk.Field{field("n", 1, sdk.TypeUint8)},
			"major n: retyped from int8 to uint8", "major n: retyped from int8 to uint8"},
		{"float32 to float64", []sdk.Field{field("x", 1, sdk.TypeFloat32)}, []sdk.Field{field("x", 1, sdk.TypeFloat64)},
			"minor x: retyped from float32 to float64 (wider)", "major x: retyped"},
		{"float64 to float32", []sdk.Field{field("x", 1, sdk.TypeFloat64)}, []sdk.Field{field("x", 1, sdk.TypeFloat32)},
			"major x: retyped from float64 to float32 (narrower)", "minor x: retyped"},
		{"int to float", []sdk.Field{field("x", 1, sdk.TypeInt64)}, []sdk.Field{field("x", 1, sdk.TypeFloat64)},
			"major x: retyped from int64 to float64", "major x: retyped from int64 to float64"},
		{"string to bytes", []sdk.Field{field("x", 1, sdk.TypeString)}, []sdk.Field{field("x", 1, sdk.TypeBytes)},
			"major x: retyped from string to bytes", "major x: retyped"},
		{"to any", []sdk.Field{field("x", 1, sdk.TypeString)}, []sdk.Field{field("x", 1, sdk.TypeAny)},
			"minor x: retyped from string to any (wider)", "major x: retyped"},
		{"from any", []sdk.Field{field("x", 1, sdk.TypeAny)}, []sdk.Field{field("x", 1, sdk.TypeString)},
			"major x: retyped from any to string (narrower)", "minor x: retyped"},
		{"array element retyped", []sdk.Field{field("l", 1, sdk.TypeArray, withItems(&sdk.Schema{Type: sdk.TypeString}))},
			[]sdk.Field{field("l", 1, sdk.TypeArray, withItems(&sdk.Schema{Type: sdk.TypeInt64}))},
			"major l[]: retyped from string to int64", "major l[]: retyped"},
		{"array to map", []sdk.Field{field("l", 1, sdk.TypeArray, withItems(&sdk.Schema{Type: sdk.TypeString}))},
			[]sdk.Field{field("l", 1, sdk.TypeMap, withItems(&sdk.Schema{Type: sdk.TypeString}))},
			"major l: retyped from []string to map[string]", "major l: retyped"},
		{"map value widened", []sdk.Field{field("m", 1, sdk.TypeMap, withItems(&sdk.Schema{Type: sdk.TypeInt64}))},
			[]sdk.Field{field("m", 1, sdk.TypeMap, withItems(&sdk.Schema{Type: sdk.TypeAny}))},
			"minor m{}: retyped from int64 to any (wider)", "major m{}: retyped"},
		{"nested field added and made required", []sdk.Field{field("ship", 1, sdk.TypeObject, fields(field("city", 1, sdk.TypeString)))},
			[]sdk.Field{field("ship", 1, sdk.TypeObject, fields(field("city", 1, sdk.TypeString, required), field("zip", 2, sdk.TypeString)))},
			"major ship.city: made required\nminor ship.zip: added", "patch ship.city: made required\nminor ship.zip: added"},
		{"inside an array of objects", []sdk.Field{field("lines", 1, sdk.TypeArray, withItems(obj(field("qty", 1, sdk.TypeInt64))))},
			[]sdk.Field{field("lines", 1, sdk.TypeArray, withItems(obj()))},
			"major lines[].qty: removed", "major lines[].qty: removed"},
		{"object made nullable", []sdk.Field{field("ship", 1, sdk.TypeObject)}, []sdk.Field{field("ship", 1, sdk.TypeObject, nullable)},
			"minor ship: may be null or left out now", "major ship: may be null or left out now"},
		{"object made non-nullable", []sdk.Field{field("ship", 1, sdk.TypeObject, nullable)}, []sdk.Field{field("ship", 1, sdk.TypeObject)},
			"minor ship: not nullable any more", "minor ship: not nullable any more"},
		{"several changes, in id order", []sdk.Field{sku, field("b", 2, sdk.TypeString), field("c", 3, sdk.TypeInt32)},
			[]sdk.Field{field("c", 3, sdk.TypeInt64), field("sku", 1, sdk.TypeString), field("d", 4, sdk.TypeBool)},
			"minor sku: made optional\nmajor b: removed\nminor c: retyped\nminor d: added",
			"patch sku: made optional\nmajor b: removed\nmajor c: retyped\nminor d: added"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			empty := obj()
			got := lines(Diff(
				manifest("1.0.0", method("quote", obj(tc.old...), empty)),
				manifest("1.0.0", method("quote", obj(tc.new...), empty))), "params")
			if !matches(got, tc.params) {
				t.Errorf("params:\ngot\n%s\nwant\n%s", got, tc.params)
			}
			got = lines(Diff(
				manifest("1.0.0", method("quote", empty, obj(tc.old...))),
				manifest("1.0.0", method("quote", empty, obj(tc.new...)))), "result")
			if !matches(got, tc.result) {
				t.Errorf("result:\ngot\n%s\nwant\n%s", got, tc.result)
			}
		})
	}
}

func TestMethodRules(t *testing.T) {
	typed := obj(field("sku", 1, sdk.TypeString))
	dyn := sdk.DynamicSchema()
	withDoc := method("quote", typed, typed)
	withDoc.Doc = "prices an order"
	cases := []struct {
		name     string
		old, new []sdk.MethodInfo
		want     string // "class method path: what" lines, prefixes
	}{
		{"method added", []sdk.MethodInfo{method("quote", typed, typed)},
			[]sdk.MethodInfo{method("catalog", dyn, dyn), method("quote", typed, typed)}, "minor catalog : method added"},
		{"method removed", []sdk.MethodInfo{method("catalog", dyn, dyn), method("quote", typed, typed)},
			[]sdk.MethodInfo{method("quote", typed, typed)}, "major catalog : method removed"},
		{"doc changed", []sdk.MethodInfo{method("quote", typed, typed)}, []sdk.MethodInfo{withDoc}, "patch quote : doc changed"},
		{"dynamic stays dynamic", []sdk.MethodInfo{method("quote", dyn, dyn)}, []sdk.MethodInfo{method("quote", dyn, dyn)}, ""},
		{"a nil schema is dynamic", []sdk.MethodInfo{method("quote", nil, nil)}, []sdk.MethodInfo{method("quote", dyn, dyn)}, ""},
		{"dynamic to typed", []sdk.MethodInfo{method("quote", dyn, dyn)}, []sdk.MethodInfo{method("quote", typed, typed)},
			"minor quote params: typed now (it was dynamic, which promised nothing checkable): {sku: string}\n" +
				"minor quote result: typed now"},
		{"typed to dynamic", []sdk.MethodInfo{method("quote", typed, typed)}, []sdk.MethodInfo{method("quote", dyn, dyn)},
			"minor quote params: dynamic now: the method checks them itself\n" +
				"major quote result: dynamic now: callers lose the fields it promised"},
		{"changes come in method order", []sdk.MethodInfo{method("b", typed, typed), method("c", typed, typed)},
			[]sdk.MethodInfo{method("a", typed, typed), method("b", typed, obj())},
			"minor a : method added\nmajor b result.sku: removed\nmajor c : method removed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out []string
			for _, c := range Diff(manifest("1.0.0", tc.old...), manifest("1.0.0", tc.new...)) {
				out = append(out, fmt.Sprintf("%s %s %s: %s", c.Class, c.Method, c.Path, c.What))
			}
			if got := strings.Join(out, "\n"); !matches(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestCheckVersions(t *testing.T) {
	patchOnly := []sdk.MethodInfo{method("quote", obj(), obj())}
	withDoc := method("quote", obj(), obj())
	withDoc.Doc = "new words"
	minor := []sdk.MethodInfo{method("quote", obj(field("c", 1, sdk.TypeString)), obj())}
	major := []sdk.MethodInfo{method("quote", obj(field("c", 1, sdk.TypeString, required)), obj())}
	cases := []struct {
		old, new string
		methods  []sdk.MethodInfo // of the new version; the old one has patchOnly
		bump     string
		allows   Class
		ok       bool
	}{
		{"1.2.3", "2.0.0", major, "major", Major, true},
		{"1.2.3", "1.3.0", minor, "minor", Minor, true},
		{"1.2.3", "1.3.0", major, "minor", Minor, false},
		{"1.2.3", "1.2.4", []sdk.MethodInfo{withDoc}, "patch", Patch, true},
		{"1.2.3", "1.2.4", minor, "patch", Patch, false},
		{"1.2.3", "1.2.3", patchOnly, "none", Patch, true},
		{"1.2.3", "1.2.3+build.2", minor, "none", Patch, false},
		{"0.2.3", "0.3.0", major, "minor", Major, true},
		{"0.2.3", "0.2.4", minor, "patch", Minor, true},
		{"0.2.3", "0.2.4", major, "patch", Minor, false},
		{"0.0.3", "0.0.4", major, "patch", Major, true},
		{"0.9.0", "1.0.0", major, "major", Major, true},
		{"1.3.0-rc.1", "1.3.0-rc.2", major, "pre-release", Major, true},
		{"1.3.0-rc.1", "1.3.0", major, "pre-release", Major, true},
		{"1.2.3", "1.3.0-rc.1", minor, "minor", Minor, true},
		{"1.2.3", "1.3.0-rc.1", major, "minor", Minor, false},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s→%s %s", tc.old, tc.new, Diff(manifest(tc.old, patchOnly...), manifest(tc.new, tc.methods...)))
		t.Run(name, func(t *testing.T) {
			v, err := Check(manifest(tc.old, patchOnly...), manifest(tc.new, tc.methods...))
			if v.Bump != tc.bump || v.Allows != tc.allows || v.OK != tc.ok || (err == nil) != tc.ok {
				t.Errorf("got bump %s allows %s ok %v (err %v), want %s %s %v", v.Bump, v.Allows, v.OK, err, tc.bump, tc.allows, tc.ok)
			}
			if v.Module != "pricing" || v.Old != tc.old || v.New != tc.new || v.Changes == nil {
				t.Errorf("verdict: %+v", v)
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	old := manifest("1.0.0", method("quote", obj(field("sku", 1, sdk.TypeString), field("coupon", 2, sdk.TypeString)), obj()))
	new := manifest("1.1.0", method("quote", obj(field("sku", 1, sdk.TypeString, required), field("qty", 3, sdk.TypeInt64)), obj()),
		method("catalog", nil, nil))
	v, err := Check(old, new)
	want := "incompatible: pricing 1.0.0 → 1.1.0 is a minor bump, which allows minor changes; these need a major one:\n" +
		"  quote params.sku: made required (major)\n" +
		"  quote params.coupon: removed: callers that send it are ignored (major)"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	if !errors.Is(err, sdk.ErrIncompatible) || v.OK || v.Needs != Major || len(v.Changes) != 4 || len(v.Breaking()) != 2 {
		t.Errorf("verdict: %+v", v)
	}

	other := new
	other.Name = "shipping"
	for name, tc := range map[string]struct {
		old, new sdk.Manifest
		err      string
	}{
		"two modules":     {old, other, "incompatible: contract: the manifests are of two modules, pricing and shipping"},
		"bad old version": {manifest("1.0", old.Methods...), new, `incompatible: contract: pricing: old version "1.0"`},
		"bad new version": {old, manifest("v1.1.0", new.Methods...), `incompatible: contract: pricing: new version "v1.1.0"`},
		"downgrade": {manifest("1.2.0", old.Methods...), manifest("1.1.9", old.Methods...),
			"incompatible: contract: pricing: the new version 1.1.9 is lower than the old 1.2.0: compare in version order"},
	} {
		v, err := Check(tc.old, tc.new)
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) || v.Module != "" {
			t.Errorf("%s: got %v (%+v), want %s", name, err, v, tc.err)
		}
	}
}

// TestTypedModules diffs manifests that sdk.Func derives from Go structs:
// the way authors meet these rules.
func TestTypedModules(t *testing.T) {
	type quoteV1 struct {
		SKU  string `hotmod:"sku,id=1,required"`
		Qty  int32  `hotmod:"qty,id=2,required"`
		Code string `hotmod:"code,id=3"`
	}
	type quoteV2 struct {
		SKU    string `hotmod:"sku,id=1,required"`
		Qty    int64  `hotmod:"qty,id=2,required"`
		Coupon string `hotmod:"coupon,id=3,alias=code"`
		Gift   bool   `hotmod:"gift,id=4"`
	}
	type out struct {
		Total int64 `hotmod:"total_cents,id=1"`
	}
	v1 := sdk.New("pricing", "1.0.0").
		Method(sdk.Func("quote", func(context.Context, quoteV1) (out, error) { return out{}, nil })).
		Handle("catalog", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
	v2 := sdk.New("pricing", "1.1.0").
		Method(sdk.Func("quote", func(context.Context, quoteV2) (out, error) { return out{}, nil })).
		Handle("catalog", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
	v, err := Check(v1.Manifest(), v2.Manifest())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(v)
	want := `{"module":"pricing","old":"1.0.0","new":"1.1.0","bump":"minor","allows":"minor","needs":"minor","changes":[` +
		`{"method":"quote","path":"params.qty","what":"retyped from int32 to int64 (wider)","class":"minor"},` +
		`{"method":"quote","path":"params.coupon","what":"renamed from \"code\", which stays an alias","class":"minor"},` +
		`{"method":"quote","path":"params.gift","what":"added","class":"minor"}],"ok":true}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// The same manifests the other way round are a downgrade.
	if _, err := Check(v2.Manifest(), v1.Manifest()); err == nil {
		t.Error("a downgrade passed")
	}
	// And a manifest against itself has no changes.
	if cs := Diff(v2.Manifest(), v2.Manifest()); len(cs) != 0 {
		t.Errorf("self diff: %v", cs)
	}
}

func TestClassText(t *testing.T) {
	for _, c := range []Class{Patch, Minor, Major} {
		b, _ := c.MarshalText()
		var back Class
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Errorf("%s: %v %v", c, back, err)
		}
	}
	var c Class
	if err := c.UnmarshalText([]byte("huge")); err == nil {
		t.Error("accepted a bad class")
	}
}

func TestWriteReport(t *testing.T) {
	old := manifest("1.0.0", method("quote", obj(field("sku", 1, sdk.TypeString), field("qty", 2, sdk.TypeInt32)), obj()))
	new := manifest("1.1.0", method("quote", obj(field("sku", 1, sdk.TypeString, required), field("qty", 2, sdk.TypeInt64)), obj()))
	v, _ := Check(old, new)
	var b strings.Builder
	if err := WriteReport(&b, v); err != nil {
		t.Fatal(err)
	}
	want := `pricing 1.0.0 → 1.1.0: a minor bump, which allows minor changes
  major  quote params.sku: made required
  minor  quote params.qty: retyped from int32 to int64 (wider)
FAIL: the changes need a major bump
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	v, _ = Check(old, manifest("1.0.1", old.Methods...))
	b.Reset()
	_ = WriteReport(&b, v)
	if want := "pricing 1.0.0 → 1.0.1: a patch bump, which allows patch changes\n  no changes to the contract\nok\n"; b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
