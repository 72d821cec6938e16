package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// order exercises every supported kind of field.
type order struct {
	SKU      string          `hotmod:"sku,id=1,required"`
	Qty      int64           `hotmod:"qty,id=2,required"`
	Coupon   string          `hotmod:"coupon,id=3,default=NONE,alias=voucher|code"`
	Small    uint8           `hotmod:"small,id=4"`
	Tiny     int8            `hotmod:"tiny,id=5,default=-3"`
	Ratio    float64         `hotmod:"ratio,id=6,default=0.5"`
	Ratio32  float32         `hotmod:"ratio32,id=7"`
	Gift     bool            `hotmod:"gift,id=8,default=true"`
	Note     []byte          `hotmod:"note,id=9"`
	Tags     []string        `hotmod:"tags,id=10"`
	Lines    []line          `hotmod:"lines,id=11"`
	Attrs    map[string]int  `hotmod:"attrs,id=12"`
	Ship     *address        `hotmod:"ship,id=13"`
	Extra    any             `hotmod:"extra,id=14"`
	Bill     address         `hotmod:"bill,id=15"`
	Meta     map[string]any  `hotmod:"meta,id=16"`
	ByName   map[string]line `hotmod:"by_name,id=17"`
	Count    int             `hotmod:"count,id=18"`
	Memo     string          `hotmod:"memo, id=19, default=\"a, b\""`
	Skipped  string          `hotmod:"-"`
	internal int
}

type line struct {
	SKU string `hotmod:"sku,id=1,required"`
	Qty int32  `hotmod:"qty,id=2,default=1"`
}

type address struct {
	City string `hotmod:"city,id=1"`
	Zip  string `hotmod:"zip,id=2,alias=postcode"`
}

// decodeBoth decodes params into a T on the map path (Decode) and on the
// CBOR path (DecodeCBOR of cbor.Marshal(params)), and fails the test unless
// both give the same value or the same error.
func decodeBoth[T any](t *testing.T, params map[string]any) (T, error) {
	t.Helper()
	fromMap, mapErr := Decode[T](params)
	data, err := cbor.Marshal(params)
	if err != nil {
		t.Fatalf("cbor.Marshal(%v): %v", params, err)
	}
	fromCBOR, cborErr := DecodeCBOR[T](data)
	if fmt.Sprint(mapErr) != fmt.Sprint(cborErr) {
		t.Errorf("the paths disagree on %v:\n  map:  %v\n  cbor: %v", params, mapErr, cborErr)
	}
	if mapErr == nil && !reflect.DeepEqual(fromMap, fromCBOR) {
		t.Errorf("the paths disagree on %v:\n  map:  %+v\n  cbor: %+v", params, fromMap, fromCBOR)
	}
	return fromMap, mapErr
}

// base is a valid order's params; with adds to a copy of it.
func with(kv ...any) map[string]any {
	m := map[string]any{"sku": "tea", "qty": int64(3)}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == del {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

var del = &struct{}{}

// defaults is what an order is when params carry only sku and qty.
func defaults() order {
	return order{SKU: "tea", Qty: 3, Coupon: "NONE", Tiny: -3, Ratio: 0.5, Gift: true, Memo: "a, b"}
}

func TestDecodeRules(t *testing.T) {
	cases := []struct {
		name   string
		params map[string]any
		want   func(o *order) // changes to defaults(); nil when an error is expected
		err    string
	}{
		{"defaults", with(), func(*order) {}, ""},
		{"unknown keys are ignored", with("colour", "red", "qty2", "x"), func(*order) {}, ""},
		{"alias", with("code", "X"), func(o *order) { o.Coupon = "X" }, ""},
		{"the wire name beats aliases", with("code", "X", "coupon", "Y", "voucher", "Z"), func(o *order) { o.Coupon = "Y" }, ""},
		{"aliases in sorted order", with("voucher", "Z", "code", "X"), func(o *order) { o.Coupon = "X" }, ""},
		{"null is absent", with("coupon", nil), func(*order) {}, ""},
		{"null is absent, then an alias", with("coupon", nil, "voucher", "V"), func(o *order) { o.Coupon = "V" }, ""},
		{"a default can be overridden by its zero", with("gift", false, "tiny", int64(0)), func(o *order) { o.Gift, o.Tiny = false, 0 }, ""},
		{"required missing", with("sku", del), nil, `bad_params: "sku" is required (a string)`},
		{"required null", with("qty", nil), nil, `bad_params: "qty" is required (an integer)`},
		{"wrong type", with("qty", "3"), nil, `bad_params: "qty": want integer, got string`},
		{"integral float to int", with("qty", 3.0), func(*order) {}, ""},
		{"fractional float to int", with("qty", 3.5), nil, `bad_params: "qty": want integer, got 3.5`},
		{"float beyond int64", with("qty", 1e19), nil, `bad_params: "qty": 1e+19 does not fit in int64`},
		{"infinity to int", with("qty", math.Inf(1)), nil, `bad_params: "qty": want integer, got +Inf`},
		{"uint8 max", with("small", int64(255)), func(o *order) { o.Small = 255 }, ""},
		{"uint8 overflow", with("small", int64(256)), nil, `bad_params: "small": 256 does not fit in uint8`},
		{"uint8 negative", with("small", int64(-1)), nil, `bad_params: "small": -1 does not fit in uint8`},
		{"int8 min", with("tiny", int64(-128)), func(o *order) { o.Tiny = -128 }, ""},
		{"int8 underflow", with("tiny", -129.0), nil, `bad_params: "tiny": -129 does not fit in int8`},
		{"Go int kinds", with("qty", int32(7), "small", uint16(9)), func(o *order) { o.Qty, o.Small = 7, 9 }, ""},
		{"int to float", with("ratio", int64(3)), func(o *order) { o.Ratio = 3 }, ""},
		{"int to float, exact beyond 2^53", with("ratio", int64(1)<<60), func(o *order) { o.Ratio = 1 << 60 }, ""},
		{"int to float, inexact", with("ratio", int64(1)<<53+1), nil,
			`bad_params: "ratio": 9007199254740993 cannot be represented exactly as a float64`},
		{"MaxInt64 to float", with("ratio", int64(math.MaxInt64)), nil,
			`bad_params: "ratio": 9223372036854775807 cannot be represented exactly as a float64`},
		{"float32 rounds", with("ratio32", 0.1), func(o *order) { o.Ratio32 = 0.1 }, ""},
		{"float32 overflow", with("ratio32", 1e300), nil, `bad_params: "ratio32": 1e+300 does not fit in float32`},
		{"float32 infinity", with("ratio32", math.Inf(-1)), func(o *order) { o.Ratio32 = float32(math.Inf(-1)) }, ""},
		{"bool", with("gift", "yes"), nil, `bad_params: "gift": want bool, got string`},
		{"no number to bool", with("gift", int64(1)), nil, `bad_params: "gift": want bool, got integer`},
		{"bytes", with("note", []byte("hi")), func(o *order) { o.Note = []byte("hi") }, ""},
		{"no string to bytes", with("note", "hi"), nil, `bad_params: "note": want bytes, got string`},
		{"no number to string", with("sku", int64(1)), nil, `bad_params: "sku": want string, got integer`},
		{"slice", with("tags", []any{"a", "b"}), func(o *order) { o.Tags = []string{"a", "b"} }, ""},
		{"empty slice", with("tags", []any{}), func(o *order) { o.Tags = []string{} }, ""},
		{"slice element", with("tags", []any{"a", int64(1)}), nil, `bad_params: "tags[1]": want string, got integer`},
		{"null slice element", with("tags", []any{nil}), nil, `bad_params: "tags[0]": want string, got null`},
		{"not a slice", with("tags", "a"), nil, `bad_params: "tags": want array, got string`},
		{"slice of structs", with("lines", []any{map[string]any{"sku": "x"}, map[string]any{"sku": "y", "qty": int64(2)}}),
			func(o *order) { o.Lines = []line{{"x", 1}, {"y", 2}} }, ""},
		{"nested required", with("lines", []any{map[string]any{"qty": int64(2)}}), nil, `bad_params: "lines[0].sku" is required (a string)`},
		{"nested wrong type", with("lines", []any{map[string]any{"sku": "x"}, map[string]any{"sku": "y", "qty": "2"}}), nil,
			`bad_params: "lines[1].qty": want integer, got string`},
		{"map", with("attrs", map[string]any{"a": int64(1), "b": 2.0}), func(o *order) { o.Attrs = map[string]int{"a": 1, "b": 2} }, ""},
		{"map value", with("attrs", map[string]any{"a": "x"}), nil, `bad_params: "attrs.a": want integer, got string`},
		{"map of structs", with("by_name", map[string]any{"a": map[string]any{"sku": "x"}}),
			func(o *order) { o.ByName = map[string]line{"a": {"x", 1}} }, ""},
		{"map of structs, nested error", with("by_name", map[string]any{"a": map[string]any{"qty": int64(1)}}), nil,
			`bad_params: "by_name.a.sku" is required (a string)`},
		{"pointer", with("ship", map[string]any{"city": "Oslo", "postcode": "0150"}),
			func(o *order) { o.Ship = &address{City: "Oslo", Zip: "0150"} }, ""},
		{"null pointer", with("ship", nil), func(*order) {}, ""},
		{"pointer, wrong type", with("ship", "Oslo"), nil, `bad_params: "ship": want object, got string`},
		{"struct", with("bill", map[string]any{"city": "Rome"}), func(o *order) { o.Bill.City = "Rome" }, ""},
		{"struct, wrong type", with("bill", []any{}), nil, `bad_params: "bill": want object, got array`},
		{"any", with("extra", []any{int64(1), "x", map[string]any{"k": true}}),
			func(o *order) { o.Extra = []any{int64(1), "x", map[string]any{"k": true}} }, ""},
		{"map of any", with("meta", map[string]any{"k": []any{1.5}}), func(o *order) { o.Meta = map[string]any{"k": []any{1.5}} }, ""},
		{"int", with("count", int64(-5)), func(o *order) { o.Count = -5 }, ""},
		{"a left-out field is not read", with("Skipped", "x", "internal", int64(1)), func(*order) {}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeBoth[order](t, tc.params)
			if tc.want == nil {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got error %v, want %s", err, tc.err)
				}
				if !errors.Is(err, ErrBadParams) {
					t.Errorf("%v is not ErrBadParams", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestCBOROnly covers inputs that only CBOR can carry.
func TestCBOROnly(t *testing.T) {
	// {"sku":"tea","qty":3,"coupon":"A","coupon":"B"}
	dup := cbor.AppendMapHeader(nil, 4)
	for _, kv := range [][2]string{{"sku", "tea"}, {"coupon", "A"}, {"coupon", "B"}} {
		dup = cbor.AppendString(cbor.AppendString(dup, kv[0]), kv[1])
	}
	dup = cbor.AppendInt(cbor.AppendString(dup, "qty"), 3)

	// {"sku":"tea","qty":2^64-1}: an integer beyond the value model.
	big := cbor.AppendMapHeader(nil, 2)
	big = cbor.AppendString(cbor.AppendString(big, "sku"), "tea")
	big = append(cbor.AppendString(big, "qty"), 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)

	// An indefinite-length map holding an indefinite-length array.
	indef := []byte{0xbf}
	indef = cbor.AppendString(cbor.AppendString(indef, "sku"), "tea")
	indef = cbor.AppendInt(cbor.AppendString(indef, "qty"), 1)
	indef = append(cbor.AppendString(indef, "tags"), 0x9f)
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		indef = cbor.AppendString(indef, s)
	}
	indef = append(indef, 0xff, 0xff)

	valid, _ := cbor.Marshal(with())
	cases := []struct {
		name string
		data []byte
		err  string
	}{
		{"a key twice", dup, `bad_params: "coupon": the key is given twice`},
		{"an integer beyond int64", big, `bad_params: "qty": integer 18446744073709551615 does not fit in int64`},
		{"indefinite lengths", indef, ""},
		{"not a map", cbor.AppendArrayHeader(nil, 0), "bad_params: params must be a CBOR map, not array"},
		{"trailing bytes", append(valid, 0x01), "bad_params: params are not valid CBOR: 1 bytes after the map"},
		{"truncated", valid[:len(valid)-1], "bad_params: "},
		{"empty means no params", nil, `bad_params: "sku" is required (a string)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCBOR[order](tc.data)
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
				t.Fatalf("got error %v, want %s", err, tc.err)
			case tc.err != "" && !errors.Is(err, ErrBadParams):
				t.Fatalf("%v is not ErrBadParams", err)
			}
			if tc.err == "" && strings.Join(got.Tags, "") != "abcde" {
				t.Errorf("tags = %q", got.Tags)
			}
		})
	}
}

func fullOrder() order {
	o := defaults()
	o.Small, o.Ratio32, o.Note, o.Tags = 7, 0.25, []byte{1, 2}, []string{"x"}
	o.Lines = []line{{"a", 1}, {"b", 2}}
	o.Attrs = map[string]int{"k": 1}
	o.Ship = &address{City: "Oslo"}
	o.Extra = map[string]any{"deep": []any{int64(1), nil, "s", 2.5, []byte("b")}}
	o.Bill = address{Zip: "1"}
	o.Meta = map[string]any{"m": true}
	o.ByName = map[string]line{"n": {"c", 3}}
	o.Count = math.MinInt64
	return o
}

// TestEncode checks that Encode and EncodeCBOR write the same values, and
// that decoding what they write gives the value back.
func TestEncode(t *testing.T) {
	for _, o := range []order{fullOrder(), {}} {
		m, err := Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckParams(m); err != nil {
			t.Errorf("Encode wrote outside the value model: %v", err)
		}
		if _, ok := m["ship"]; ok != (o.Ship != nil) {
			t.Errorf("a nil pointer is left out, a set one written: ship present = %v", ok)
		}
		data, err := EncodeCBOR(&o)
		if err != nil {
			t.Fatal(err)
		}
		fromCBOR, err := cbor.Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		viaCBOR, _ := cbor.Marshal(m)
		fromMap, _ := cbor.Unmarshal(viaCBOR)
		if !reflect.DeepEqual(fromCBOR, fromMap) {
			t.Errorf("Encode and EncodeCBOR disagree:\n  map:  %v\n  cbor: %v", fromMap, fromCBOR)
		}
		back, err := decodeBoth[order](t, m)
		if err != nil {
			t.Fatal(err)
		}
		want := o
		want.Skipped, want.internal = "", 0
		if o.SKU == "" { // the zero order: empty strings and zero values are sent, not left out
			want.Tags, want.Lines, want.Note = []string{}, []line{}, []byte{}
			want.Attrs, want.Meta, want.ByName = map[string]int{}, map[string]any{}, map[string]line{}
		}
		if !reflect.DeepEqual(back, want) {
			t.Errorf("round trip:\n  got  %+v\n  want %+v", back, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	type big struct {
		N uint64 `hotmod:"n,id=1"`
	}
	type text struct {
		S string `hotmod:"s,id=1"`
	}
	type anyField struct {
		V any `hotmod:"v,id=1"`
	}
	cases := []struct {
		name string
		enc  func() (map[string]any, error)
		cbor func() ([]byte, error)
		err  string
	}{
		{"uint64 beyond int64", func() (map[string]any, error) { return Encode(big{math.MaxUint64}) },
			func() ([]byte, error) { return EncodeCBOR(big{math.MaxUint64}) },
			`bad_params: "n": 18446744073709551615 does not fit in the value model's int64`},
		{"nil pointer", func() (map[string]any, error) { return Encode((*big)(nil)) },
			func() ([]byte, error) { return EncodeCBOR((*big)(nil)) }, "bad_params: sdk.Encode"},
		{"not a struct", func() (map[string]any, error) { return Encode(3) },
			func() ([]byte, error) { return EncodeCBOR(3) }, "bad_params: sdk.Encode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.enc(); err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("Encode: got %v, want %s", err, tc.err)
			}
			if _, err := tc.cbor(); err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("EncodeCBOR: got %v, want %s", err, tc.err)
			}
		})
	}
	// Only CBOR can fail on these: the map path hands values over as they are.
	if _, err := EncodeCBOR(text{"\xff"}); err == nil || err.Error() != `bad_params: "s": the string is not valid UTF-8` {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := EncodeCBOR(anyField{time.Time{}}); err == nil || !strings.Contains(err.Error(), `"v": value: time.Time is not in the value model`) {
		t.Errorf("any outside the value model: %v", err)
	}
}

func TestSchemaFromTags(t *testing.T) {
	type ints struct {
		A int    `hotmod:"a,id=1"`
		B int8   `hotmod:"b,id=2"`
		C int16  `hotmod:"c,id=3"`
		D int32  `hotmod:"d,id=4"`
		E int64  `hotmod:"e,id=5"`
		F uint   `hotmod:"f,id=6"`
		G uint8  `hotmod:"g,id=7"`
		H uint16 `hotmod:"h,id=8"`
		I uint32 `hotmod:"i,id=9"`
		J uint64 `hotmod:"j,id=10"`
	}
	type cents int64
	type sku string
	type named struct {
		Price cents            `hotmod:"price,id=1,default=100"`
		SKU   sku              `hotmod:"sku,id=2,default=tea"`
		Dur   time.Duration    `hotmod:"dur,id=3"`
		Raw   json.RawMessage  `hotmod:"raw,id=4"`
		Grid  [][]float32      `hotmod:"grid,id=5"`
		Opt   []*line          `hotmod:"opt,id=6"`
		Deep  map[string][]any `hotmod:"deep,id=7"`
	}
	type ordered struct {
		Z string `hotmod:"z,id=3"`
		Y string `hotmod:"y,id=1,alias=y2|y1"`
		X string `hotmod:"x,id=2,default=0"`
		W bool   `hotmod:"w,id=4,default=false"`
		V string `hotmod:"v,id=5,default=\"\""`
	}
	cases := []struct {
		name string
		got  func() (*Schema, error)
		want string
	}{
		{"every kind", SchemaOf[order],
			`{sku!: string, qty!: int64, coupon: string = "NONE" (alias code, voucher), small: uint8, tiny: int8 = -3, ` +
				`ratio: float64 = 0.5, ratio32: float32, gift: bool = true, note: bytes, tags: []string, ` +
				`lines: []{sku!: string, qty: int32 = 1}, attrs: map[int64], ship: {city: string, zip: string (alias postcode)}?, ` +
				`extra: any, bill: {city: string, zip: string (alias postcode)}, meta: map[any], ` +
				`by_name: map[{sku!: string, qty: int32 = 1}], count: int64, memo: string = "a, b"}`},
		{"integers carry their range", SchemaOf[ints],
			"{a: int64, b: int8, c: int16, d: int32, e: int64, f: uint64, g: uint8, h: uint16, i: uint32, j: uint64}"},
		{"named types and nesting", SchemaOf[named],
			`{price: int64 = 100, sku: string = "tea", dur: int64, raw: bytes, grid: [][]float32, opt: []{sku!: string, qty: int32 = 1}?, deep: map[[]any]}`},
		{"canonical: by id, aliases sorted, zero defaults dropped", SchemaOf[ordered],
			"{y: string (alias y1, y2), x: string = \"0\", z: string, w: bool, v: string}"},
		{"empty struct", SchemaOf[struct{}], "{}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.got()
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tc.want {
				t.Errorf("got  %s\nwant %s", s, tc.want)
			}
		})
	}

	// The JSON form, as the manifest carries it.
	s, _ := SchemaOf[line]()
	b, _ := json.Marshal(s)
	want := `{"type":"object","fields":[{"name":"sku","id":1,"required":true,"type":"string"},{"name":"qty","id":2,"default":1,"type":"int32"}]}`
	if string(b) != want {
		t.Errorf("JSON form:\ngot  %s\nwant %s", b, want)
	}
}

func TestBadTags(t *testing.T) {
	type node struct {
		Next *node `hotmod:"next,id=1"`
	}
	type out struct{}
	ctx := context.Background()
	_ = ctx
	bad := func(in any) MethodDef {
		// A MethodDef for params of in's type, made through reflection so the
		// table can list types; Func itself is generic.
		t := reflect.TypeOf(in)
		_, err := planFor(t)
		return MethodDef{name: "m", err: fmt.Errorf("params: %w", err)}
	}
	cases := []struct {
		name string
		def  MethodDef
		want string
	}{
		{"no tag", bad(struct{ A int }{}), `.A: no hotmod tag: give it one, e.g. ` + "`" + `hotmod:"a,id=1"` + "`"},
		{"no id", bad(struct {
			A int `hotmod:"a"`
		}{}), `tag "a": no id`},
		{"id zero", bad(struct {
			A int `hotmod:"a,id=0"`
		}{}), `id "0" is not an integer from 1 to 2147483647`},
		{"id not a number", bad(struct {
			A int `hotmod:"a,id=x"`
		}{}), `id "x" is not an integer`},
		{"duplicate id", bad(struct {
			A int `hotmod:"a,id=1"`
			B int `hotmod:"b,id=1"`
		}{}), `.B: id 1 is already used by A`},
		{"duplicate name", bad(struct {
			A int `hotmod:"a,id=1"`
			B int `hotmod:"a,id=2"`
		}{}), `.B: name "a" is already used by A`},
		{"alias used as a name", bad(struct {
			A int `hotmod:"a,id=1"`
			B int `hotmod:"b,id=2,alias=a"`
		}{}), `.B: name "a" is already used by A`},
		{"unparseable default", bad(struct {
			A int `hotmod:"a,id=1,default=abc"`
		}{}), `default "abc" is not a int64`},
		{"default out of range", bad(struct {
			A uint8 `hotmod:"a,id=1,default=256"`
		}{}), `default "256" is not a uint8 (a base-10 integer from 0 to 255)`},
		{"bad bool default", bad(struct {
			A bool `hotmod:"a,id=1,default=yes"`
		}{}), `default "yes" is not a bool`},
		{"bad float default", bad(struct {
			A float64 `hotmod:"a,id=1,default=NaN"`
		}{}), `default "NaN" is not a finite float64`},
		{"quoted default on a number", bad(struct {
			A int `hotmod:"a,id=1,default=\"1\""`
		}{}), `a quoted default is only for string fields`},
		{"default on a required field", bad(struct {
			A int `hotmod:"a,id=1,required,default=1"`
		}{}), `a required field cannot have a default`},
		{"default on a slice", bad(struct {
			A []int `hotmod:"a,id=1,default=1"`
		}{}), `a default is only allowed on bool, integer, float and string fields, not array`},
		{"required pointer", bad(struct {
			A *line `hotmod:"a,id=1,required"`
		}{}), `a pointer field is optional by nature`},
		{"unknown option", bad(struct {
			A int `hotmod:"a,id=1,requird"`
		}{}), `unknown option "requird"`},
		{"option twice", bad(struct {
			A int `hotmod:"a,id=1,id=2"`
		}{}), `id is given twice`},
		{"bad name", bad(struct {
			A int `hotmod:"1a,id=1"`
		}{}), `the name "1a" must start with a letter`},
		{"bad alias", bad(struct {
			A int `hotmod:"a,id=1,alias=b|"`
		}{}), `alias "" must start with a letter`},
		{"stray comma", bad(struct {
			A int `hotmod:"a,id=1,"`
		}{}), `empty option`},
		{"unterminated quote", bad(struct {
			A string `hotmod:"a,id=1,default=\"x"`
		}{}), `a quoted default has no closing quote`},
		{"unexported field with a tag", bad(struct {
			a int `hotmod:"a,id=1"`
		}{}), `.a: the field is unexported`},
		{"chan", bad(struct {
			A chan int `hotmod:"a,id=1"`
		}{}), `.A: chan int is not supported`},
		{"func", bad(struct {
			A func() `hotmod:"a,id=1"`
		}{}), `.A: func() is not supported`},
		{"array", bad(struct {
			A [2]int `hotmod:"a,id=1"`
		}{}), `.A: [2]int is not supported`},
		{"complex", bad(struct {
			A complex128 `hotmod:"a,id=1"`
		}{}), `.A: complex128 is not supported`},
		{"uintptr", bad(struct {
			A uintptr `hotmod:"a,id=1"`
		}{}), `.A: uintptr is not supported`},
		{"map with int keys", bad(struct {
			A map[int]string `hotmod:"a,id=1"`
		}{}), `map keys must be strings`},
		{"pointer to int", bad(struct {
			A *int `hotmod:"a,id=1"`
		}{}), `pointers are supported only to structs`},
		{"interface with methods", bad(struct {
			A error `hotmod:"a,id=1"`
		}{}), `the only interface type allowed is any`},
		{"unsupported element", bad(struct {
			A []chan int `hotmod:"a,id=1"`
		}{}), `.A[]: chan int is not supported`},
		{"time.Time", bad(struct {
			A time.Time `hotmod:"a,id=1"`
		}{}), `time.Time has no exported fields`},
		{"recursive type", bad(node{}), `sdk.node refers to itself`},
		{"params not a struct", Func("m", func(context.Context, int) (out, error) { return out{}, nil }),
			`params: int is not a struct`},
		{"result not a struct", Func("m", func(context.Context, out) (map[string]any, error) { return nil, nil }),
			`result: map[string]interface {} is not a struct`},
		{"nil function", Func[out, out]("m", nil), `the function is nil`},
		{"empty MethodDef", MethodDef{}, `an empty MethodDef: make one with sdk.Func`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := New("x", "1.0.0").Handle("ok", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
			m.Method(tc.def)
			err := m.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v\nwant it to contain %s", err, tc.want)
			}
			if !errors.Is(err, ErrIncompatible) {
				t.Errorf("%v is not ErrIncompatible", err)
			}
			if _, ok := m.methods["m"]; ok {
				t.Error("a bad method was added")
			}
		})
	}

	// Every problem of a type is reported at once.
	type many struct {
		A int `hotmod:"a"`
		B int `hotmod:"b,id=x"`
		C chan int
	}
	_, err := planFor(reflect.TypeOf(many{}))
	if err == nil || strings.Count(err.Error(), "; ") != 2 {
		t.Errorf("want three problems, got %v", err)
	}
}

func TestSliceLimit(t *testing.T) {
	type big struct {
		Pad [1 << 20]byte `hotmod:"-"`
		A   int           `hotmod:"a,id=1"`
	}
	type in struct {
		L []big `hotmod:"l,id=1"`
	}
	n := MaxSliceBytes/(1<<20) + 1
	data := cbor.AppendArrayHeader(cbor.AppendString(cbor.AppendMapHeader(nil, 1), "l"), n)
	for i := 0; i < n; i++ {
		data = cbor.AppendMapHeader(data, 0)
	}
	want := `bad_params: "l": 65 elements of 1048584 bytes each are over the limit of 67108864 bytes`
	if _, err := DecodeCBOR[in](data); err == nil || err.Error() != want {
		t.Errorf("CBOR: got %v", err)
	}
	empty := make([]any, n)
	for i := range empty {
		empty[i] = map[string]any{}
	}
	if _, err := Decode[in](map[string]any{"l": empty}); err == nil || err.Error() != want {
		t.Errorf("map: got %v", err)
	}
}

// TestContainers round-trips every representation of slices and maps the
// plans have: typed code for common element types, reflect for the others.
func TestContainers(t *testing.T) {
	type sku string
	type tags map[string]string
	type kinds struct {
		MS   map[string]string     `hotmod:"ms,id=1"`
		MI64 map[string]int64      `hotmod:"mi64,id=2"`
		MI   map[string]int        `hotmod:"mi,id=3"`
		MF   map[string]float64    `hotmod:"mf,id=4"`
		MB   map[string]bool       `hotmod:"mb,id=5"`
		MA   map[string]any        `hotmod:"ma,id=6"`
		MU8  map[string]uint8      `hotmod:"mu8,id=7"`
		MK   map[sku]int           `hotmod:"mk,id=8"`
		MT   tags                  `hotmod:"mt,id=9"`
		MP   map[string]*address   `hotmod:"mp,id=10"`
		MM   map[string][]string   `hotmod:"mm,id=11"`
		SI64 []int64               `hotmod:"si64,id=12"`
		SI   []int                 `hotmod:"si,id=13"`
		SS   []string              `hotmod:"ss,id=14"`
		SF   []float64             `hotmod:"sf,id=15"`
		SB   []bool                `hotmod:"sb,id=16"`
		SA   []any                 `hotmod:"sa,id=17"`
		SI8  []int8                `hotmod:"si8,id=18"`
		SF32 []float32             `hotmod:"sf32,id=19"`
		SSS  [][]string            `hotmod:"sss,id=20"`
		SP   []*address            `hotmod:"sp,id=21"`
		SBB  [][]byte              `hotmod:"sbb,id=22"`
		SM   []map[string]int64    `hotmod:"sm,id=23"`
		Deep map[string][]*address `hotmod:"deep,id=24"`
	}
	v := kinds{
		MS: map[string]string{"a": "x"}, MI64: map[string]int64{"a": -1}, MI: map[string]int{"a": 1 << 40},
		MF: map[string]float64{"a": 0.5}, MB: map[string]bool{"a": true, "b": false}, MA: map[string]any{"a": []any{nil}},
		MU8: map[string]uint8{"a": 255}, MK: map[sku]int{"tea": 3}, MT: tags{"k": "v"},
		MP: map[string]*address{"home": {City: "Oslo"}, "none": nil}, MM: map[string][]string{"a": {"b", "c"}},
		SI64: []int64{1, -2}, SI: []int{3}, SS: []string{"s", ""}, SF: []float64{1.25}, SB: []bool{true},
		SA: []any{int64(1), "x", nil, 2.5, []byte("b"), map[string]any{}}, SI8: []int8{-128, 127}, SF32: []float32{0.5},
		SSS: [][]string{{"a"}, {}}, SP: []*address{nil, {Zip: "1"}}, SBB: [][]byte{{1}, {}},
		SM: []map[string]int64{{"a": 1}}, Deep: map[string][]*address{"d": {{City: "x"}, nil}},
	}
	m, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeBoth[kinds](t, m)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", back, v)
	}
	data, err := EncodeCBOR(v)
	if err != nil {
		t.Fatal(err)
	}
	fromCBOR, err := DecodeCBOR[kinds](data)
	if err != nil || !reflect.DeepEqual(fromCBOR, v) {
		t.Errorf("CBOR round trip: %v\ngot  %+v\nwant %+v", err, fromCBOR, v)
	}

	// Errors inside containers name the path on both paths.
	for params, want := range map[string]string{
		`mu8`:  `bad_params: "mu8.a": 256 does not fit in uint8`,
		`mk`:   `bad_params: "mk.tea": want integer, got string`,
		`mp`:   `bad_params: "mp.home.city": want string, got bool`,
		`sm`:   `bad_params: "sm[0].a": want integer, got 1.5`,
		`deep`: `bad_params: "deep.d[1].zip": want string, got integer`,
	} {
		p := map[string]any{
			"mu8":  map[string]any{"a": int64(256)},
			"mk":   map[string]any{"tea": "x"},
			"mp":   map[string]any{"home": map[string]any{"city": true}},
			"sm":   []any{map[string]any{"a": 1.5}},
			"deep": map[string]any{"d": []any{nil, map[string]any{"zip": int64(1)}}},
		}[params]
		_, err := decodeBoth[kinds](t, map[string]any{params: p})
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", params, err, want)
		}
	}
}

// FuzzDecodeCBOR checks that the typed CBOR decoder never panics and agrees
// with the map path on every input that cbor.UnmarshalMap accepts: both
// succeed with the same value, or both fail.
func FuzzDecodeCBOR(f *testing.F) {
	for _, p := range []map[string]any{with(), with("code", "X", "lines", []any{map[string]any{"sku": "a"}}),
		with("ship", map[string]any{"postcode": "1"}, "extra", []any{1.5, nil}, "attrs", map[string]any{"a": int64(1)})} {
		data, _ := cbor.Marshal(p)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fromCBOR, cborErr := DecodeCBOR[order](data)
		m, err := cbor.UnmarshalMap(data)
		if err != nil {
			return
		}
		fromMap, mapErr := Decode[order](m)
		if (mapErr == nil) != (cborErr == nil) {
			t.Fatalf("the paths disagree:\n  map:  %v\n  cbor: %v", mapErr, cborErr)
		}
		if mapErr == nil && !reflect.DeepEqual(fromMap, fromCBOR) {
			t.Fatalf("the paths disagree:\n  map:  %+v\n  cbor: %+v", fromMap, fromCBOR)
		}
	})
}
