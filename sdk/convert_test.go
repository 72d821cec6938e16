package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

type celsius float32
type status string
type ids []uint16

func TestToValue(t *testing.T) {
	at := time.Date(2026, 12, 5, 19, 4, 5, 123456000, time.FixedZone("CET", 3600))
	x := int64(7)
	var nilPtr *int
	for _, c := range []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"int", 3, int64(3)},
		{"int8", int8(-8), int64(-8)},
		{"int16", int16(16), int64(16)},
		{"int32", int32(32), int64(32)},
		{"uint", uint(1), int64(1)},
		{"uint8", uint8(255), int64(255)},
		{"uint32", uint32(math.MaxUint32), int64(math.MaxUint32)},
		{"uint64 max int64", uint64(math.MaxInt64), int64(math.MaxInt64)},
		{"float32", float32(1.5), 1.5},
		{"named float", celsius(-40), float64(-40)},
		{"named string", status("ok"), "ok"},
		{"bytes stay bytes", []byte("hi"), []byte("hi")},
		{"duration in nanoseconds", 1500 * time.Millisecond, int64(1_500_000_000)},
		{"time in UTC RFC 3339", at, "2026-12-05T18:04:05.123456000Z"},
		{"zero time", time.Time{}, "0001-01-01T00:00:00.000000000Z"},
		{"[]int", []int{1, 2}, []any{int64(1), int64(2)}},
		{"named []uint16", ids{7}, []any{int64(7)}},
		{"array", [2]int32{1, 2}, []any{int64(1), int64(2)}},
		{"byte array", [3]byte{1, 2, 3}, []byte{1, 2, 3}},
		{"nil slice", []int(nil), nil},
		{"pointer", &x, int64(7)},
		{"nil pointer", nilPtr, nil},
		{"map[string]int", map[string]int{"a": 1}, map[string]any{"a": int64(1)}},
		{"map of named keys", map[status][]time.Duration{"up": {time.Second}}, map[string]any{"up": []any{int64(time.Second)}}},
		{"nested", map[string]any{"at": []time.Time{at}, "n": []any{uint8(1), map[string]float32{"f": 2}}},
			map[string]any{"at": []any{"2026-12-05T18:04:05.123456000Z"}, "n": []any{int64(1), map[string]any{"f": 2.0}}}},
	} {
		got, err := sdk.ToValue(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: ToValue(%#v) = %#v, %v; want %#v", c.name, c.in, got, err, c.want)
			continue
		}
		if err := sdk.CheckValue(got); err != nil {
			t.Errorf("%s: the result is not in the value model: %v", c.name, err)
		}
	}
	if back, err := time.Parse(time.RFC3339Nano, "2026-12-05T18:04:05.123456000Z"); err != nil || !back.Equal(at) {
		t.Errorf("the time does not read back: %v, %v", back, err)
	}
}

func TestToValueKeepsModelValues(t *testing.T) {
	in := map[string]any{"xs": []any{int64(1), "a", map[string]any{"b": []byte{1}}}}
	got, err := sdk.ToValue(in)
	if err != nil || reflect.ValueOf(got).Pointer() != reflect.ValueOf(in).Pointer() {
		t.Fatalf("a value of the model's own types is returned as it is: %v, %v", got, err)
	}
	// An int inside []any is converted: ToValue's results hold int64 only.
	got, err = sdk.ToValue([]any{1})
	if err != nil || !reflect.DeepEqual(got, []any{int64(1)}) {
		t.Fatalf("got %#v, %v", got, err)
	}
}

func TestToValueErrors(t *testing.T) {
	deep := any(int64(1))
	for range sdk.MaxDepth + 1 {
		deep = []any{deep}
	}
	for _, c := range []struct {
		name string
		in   any
		want string
	}{
		{"struct", map[string]any{"items": []any{1, struct{ A int }{}}}, "value.items[1]: struct { A int } is not in the value model"},
		{"int keys", map[string]any{"m": map[int]string{}}, "value.m: map[int]string is not in the value model"},
		{"channel", []any{make(chan int)}, "value[0]: chan int is not in the value model"},
		{"uint64 too big", map[string]uint64{"n": math.MaxUint64}, "value.n: uint64 18446744073709551615 does not fit in int64"},
		{"too deep", deep, "nested deeper than 64 levels"},
	} {
		_, err := sdk.ToValue(c.in)
		if !errors.Is(err, sdk.ErrBadParams) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want bad_params containing %q", c.name, err, c.want)
		}
	}
}

func TestToParams(t *testing.T) {
	got, err := sdk.ToParams(map[string][]int{"xs": {1}})
	if err != nil || !reflect.DeepEqual(got, map[string]any{"xs": []any{int64(1)}}) {
		t.Fatalf("got %#v, %v", got, err)
	}
	if _, err := sdk.ToParams(map[string]any{"at": []any{struct{}{}}}); err == nil || !strings.Contains(err.Error(), "at[0]: struct {} is not in the value model") {
		t.Fatalf("paths start at the keys, as CheckParams's do: %v", err)
	}
	if _, err := sdk.ToParams([]int{1}); err == nil || !strings.Contains(err.Error(), "[]int is not a map with string keys") {
		t.Fatalf("not a map: %v", err)
	}
}

// A dynamic method converts what it computed with ToParams; the result
// crosses every transport, CBOR included.
func ExampleToParams() {
	m := sdk.New("stats", "1.0.0").Handle("window", func(context.Context, map[string]any) (map[string]any, error) {
		return sdk.ToParams(map[string]any{
			"counts": []int{3, 1, 4},
			"since":  time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC),
			"span":   90 * time.Second,
		})
	})
	b, err := m.InvokeCBOR(context.Background(), "window", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := cbor.UnmarshalMap(b)
	fmt.Println(out["counts"], out["since"], out["span"])
	// Output: [3 1 4] 2026-12-05T18:00:00.000000000Z 90000000000
}

func BenchmarkToValue(b *testing.B) {
	at := time.Now()
	for _, c := range []struct {
		name string
		v    any
	}{
		{"model map", map[string]any{"sku": "tea", "qty": int64(2), "tags": []any{"a", "b"}}},
		{"[]int 16", make([]int, 16)},
		{"time", at},
		{"nested", map[string]any{"at": []time.Time{at, at}, "n": map[string][]int32{"a": {1, 2, 3}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := sdk.ToValue(c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
