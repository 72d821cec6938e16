package cbor

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestBoxedValuesOutliveTheDecoder: strings, integers and floats boxed in a
// decoder's slabs keep their values after the decoder is reset and reused,
// and through collections.
func TestBoxedValuesOutliveTheDecoder(t *testing.T) {
	mk := func(tag string) map[string]any {
		items := make([]any, 40)
		for i := range items {
			items[i] = map[string]any{"s": tag + strings.Repeat("x", i%30), "i": int64(-1000 * i), "f": 0.5 + float64(i), "big": int64(300 + i)}
		}
		return map[string]any{"items": items, "tag": tag}
	}
	d := NewDecoder(nil, DefaultLimits)
	var got []any
	for _, tag := range []string{"first", "second", "third"} {
		data, err := Marshal(mk(tag))
		if err != nil {
			t.Fatal(err)
		}
		d.Reset(data)
		v, err := d.ReadValue()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
		runtime.GC()
	}
	for i, tag := range []string{"first", "second", "third"} {
		if want := mk(tag); !reflect.DeepEqual(got[i], want) {
			t.Errorf("value %d changed after later decodes:\n got %v\nwant %v", i, got[i], want)
		}
	}
}
