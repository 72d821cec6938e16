package cbor_test

import (
	"fmt"

	"github.com/hotmod/hotmod/sdk/cbor"
)

func ExampleMarshalDeterministic() {
	b, err := cbor.MarshalDeterministic(map[string]any{"sum": int64(3), "a": 1.5, "ok": true})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", b)
	v, _ := cbor.Unmarshal(b)
	fmt.Printf("%#v\n", v.(map[string]any)["sum"])
	// Output:
	// a36161f93e00626f6bf56373756d03
	// 3
}

func ExampleUnmarshal_error() {
	_, err := cbor.Unmarshal([]byte{0xa1, 0x01, 0x02}) // {1: 2}
	fmt.Println(err)
	_, err = cbor.Unmarshal([]byte{0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	fmt.Println(err)
	// Output:
	// cbor: offset 1: map key is an unsigned integer; keys must be text strings
	// cbor: offset 0: integer 18446744073709551615 does not fit in int64
}

// A typed decoder reads params straight into a struct, without building a
// map, and copes with indefinite lengths from other languages' encoders.
func ExampleDecoder() {
	type add struct{ A, B int64 }
	data, _ := cbor.Marshal(map[string]any{"a": 1, "b": 2, "note": "ignored"})

	d := cbor.NewDecoder(data, cbor.DefaultLimits)
	var p add
	n, err := d.ReadMapHeader()
	for i := 0; err == nil && (n < 0 && !d.AtBreak() || i < n); i++ {
		var key []byte
		if key, err = d.ReadStringBytes(); err != nil {
			break
		}
		switch string(key) {
		case "a":
			p.A, err = d.ReadInt()
		case "b":
			p.B, err = d.ReadInt()
		default:
			err = d.Skip()
		}
	}
	if err == nil && n < 0 {
		err = d.ReadBreak()
	}
	fmt.Println(p, err, d.Done())

	out := cbor.AppendMapHeader(nil, 1)
	out = cbor.AppendString(out, "sum")
	out = cbor.AppendInt(out, p.A+p.B)
	fmt.Printf("%x\n", out)
	// Output:
	// {1 2} <nil> true
	// a16373756d03
}
