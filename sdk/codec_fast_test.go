package sdk

import (
	"context"
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// flatOrder is order without map and any fields: what the fast path
// decodes.
type flatOrder struct {
	SKU     string   `hotmod:"sku,id=1,required"`
	Qty     int64    `hotmod:"qty,id=2,required"`
	Coupon  string   `hotmod:"coupon,id=3,default=NONE,alias=voucher|code"`
	Small   uint8    `hotmod:"small,id=4"`
	Tiny    int8     `hotmod:"tiny,id=5,default=-3"`
	Ratio   float64  `hotmod:"ratio,id=6,default=0.5"`
	Ratio32 float32  `hotmod:"ratio32,id=7"`
	Gift    bool     `hotmod:"gift,id=8,default=true"`
	Note    []byte   `hotmod:"note,id=9"`
	Tags    []string `hotmod:"tags,id=10"`
	Lines   []line   `hotmod:"lines,id=11"`
	Ship    *address `hotmod:"ship,id=13"`
	Bill    address  `hotmod:"bill,id=15"`
	Count   int      `hotmod:"count,id=18"`
	Long    string   `hotmod:"a_rather_long_field_name,id=20"`
	Ints    []int64  `hotmod:"ints,id=21"`
}

// fastAndGeneral decodes data into a T on the fast path and on the general
// one. The fast path may give up; when it does not, both must give the
// same value.
func fastAndGeneral[T any](t *testing.T, data []byte) (ok bool) {
	t.Helper()
	c, err := planFor(reflect.TypeFor[T]())
	if err != nil {
		t.Fatal(err)
	}
	var fast, general T
	ok = c.decodeFast(unsafe.Pointer(&fast), data)
	gerr := c.decodeCBORGeneral(unsafe.Pointer(&general), data)
	if ok && gerr != nil {
		t.Fatalf("the fast path accepted %x, which the general path refuses: %v", data, gerr)
	}
	if ok && !reflect.DeepEqual(fast, general) {
		t.Fatalf("the paths disagree on %x:\n  fast:    %+v\n  general: %+v", data, fast, general)
	}
	return ok
}

func TestFastPathDecodes(t *testing.T) {
	for _, p := range []map[string]any{
		with(),
		with("small", int64(255), "tiny", int64(-128), "ratio", int64(2), "ratio32", 1.5, "gift", false, "count", 3.0,
			"note", []byte("hi"), "tags", []any{"x", "ü"}, "lines", []any{map[string]any{"sku": "a"}, map[string]any{"sku": "b", "qty": int64(9)}},
			"ship", map[string]any{"city": "Lyon", "zip": "69001"}, "bill", map[string]any{"city": "Oslo"},
			"a_rather_long_field_name", "long", "ints", []any{int64(-1), int64(1 << 40)}, "unknown", "skipped", "other", int64(-5)),
		with("ship", nil, "coupon", nil, "note", []byte{}, "tags", []any{}),
		with("sku", strings.Repeat("é", 40), "ratio", math.Inf(1), "ratio32", 65504.0),
	} {
		for _, marshal := range []func(any) ([]byte, error){cbor.Marshal, cbor.MarshalDeterministic} {
			data, err := marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if !fastAndGeneral[flatOrder](t, data) {
				t.Errorf("the fast path gave up on %v (%x)", p, data)
			}
		}
	}
}

// TestFastPathGivesUp: what the fast path leaves to the general path, which
// decides (and words) every error.
func TestFastPathGivesUp(t *testing.T) {
	for name, p := range map[string]map[string]any{
		"alias":          with("code", "X"),
		"missing":        with("qty", del),
		"wrong type":     with("qty", "3"),
		"out of range":   with("small", int64(256)),
		"not integral":   with("qty", 2.5),
		"null in array":  with("tags", []any{nil}),
		"unknown nested": with("x", []any{int64(1)}),
	} {
		data, err := cbor.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if fastAndGeneral[flatOrder](t, data) {
			t.Errorf("%s: the fast path accepted %v", name, p)
		}
	}
	for name, hex := range map[string]string{
		"indefinite map":  "bf63736b7563746561637174790303ff",
		"self-describe":   "d9d9f7a263736b7563746561637174790303",
		"duplicate key":   "a363736b75637465616371747903637174790303",
		"trailing bytes":  "a263736b756374656163717479030300",
		"truncated":       "a263736b75637465616371",
		"invalid UTF-8":   "a263736b7562ff6163717479" + "03",
		"count too large": "b9ffff63736b75",
	} {
		if fastAndGeneral[flatOrder](t, mustHex(t, hex)) {
			t.Errorf("%s: the fast path accepted %s", name, hex)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzFastPath checks that the fast path never accepts what the general
// path refuses, and decodes what it accepts as the general path does.
func FuzzFastPath(f *testing.F) {
	for _, p := range []map[string]any{with(), with("lines", []any{map[string]any{"sku": "a"}}, "ship", map[string]any{"zip": "1"}),
		with("small", int64(7), "ratio32", 0.25, "note", []byte("x"), "ints", []any{int64(1)}, "gift", false)} {
		data, _ := cbor.Marshal(p)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fastAndGeneral[flatOrder](t, data)
		fastAndGeneral[ab](t, data)
	})
}

// TestTypedCallAllocs: a typed call whose params hold no strings, slices or
// pointers allocates nothing when its result goes into a reused buffer, as
// the wasm guest's does.
func TestTypedCallAllocs(t *testing.T) {
	m := adder()
	h := m.methods["add"]
	data := mustCBOR(t, map[string]any{"a": int64(1), "b": int64(2)})
	ctx := context.Background()
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		out, err := m.invokeCBOR(ctx, h, "add", data, buf[:0])
		if err != nil || len(out) != 6 {
			t.Fatal(out, err)
		}
	})
	if allocs != 0 {
		t.Errorf("a typed call allocates %v times, want 0", allocs)
	}
}

// TestDynamicCallAllocs: a dynamic call allocates what decoding its params
// map takes and what the method itself allocates, nothing more (its result
// is encoded into a reused buffer, as the wasm guest's is).
func TestDynamicCallAllocs(t *testing.T) {
	m := adder()
	h := m.methods["add_dynamic"]
	data := mustCBOR(t, map[string]any{"a": int64(1), "b": int64(2)})
	ctx := context.Background()
	params, err := cbor.UnmarshalMap(data)
	if err != nil {
		t.Fatal(err)
	}
	decode := testing.AllocsPerRun(100, func() {
		if _, err := cbor.UnmarshalMap(data); err != nil {
			t.Fatal(err)
		}
	})
	method := testing.AllocsPerRun(100, func() {
		if _, err := addDynamic(ctx, params); err != nil {
			t.Fatal(err)
		}
	})
	buf := make([]byte, 0, 64)
	call := testing.AllocsPerRun(100, func() {
		out, err := m.invokeCBOR(ctx, h, "add_dynamic", data, buf[:0])
		if err != nil || len(out) != 6 {
			t.Fatal(out, err)
		}
	})
	if call > decode+method {
		t.Errorf("a dynamic call allocates %v times; decoding its params takes %v and the method %v", call, decode, method)
	}
}
