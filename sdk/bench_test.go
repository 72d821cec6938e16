package sdk

import (
	"context"
	"testing"

	"github.com/hotmod/hotmod/sdk/cbor"
)

type ab struct {
	A int64 `hotmod:"a,id=1"`
	B int64 `hotmod:"b,id=2"`
}

// BenchmarkDecode decodes {"a":1,"b":2}: straight into struct{A, B int64}
// on the typed path, into a map by cbor.UnmarshalMap on the dynamic one.
func BenchmarkDecode(b *testing.B) {
	data := mustCBOR(b, map[string]any{"a": int64(1), "b": int64(2)})
	b.Run("typed", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			v, err := DecodeCBOR[ab](data)
			if err != nil || v.B != 2 {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			m, err := cbor.UnmarshalMap(data)
			if err != nil || len(m) != 2 {
				b.Fatal(m, err)
			}
		}
	})
}

// BenchmarkInvokeCBOR is the byte transports' whole call inside the module:
// {"a":1,"b":2} → {"sum":3}, CBOR in and out.
func BenchmarkInvokeCBOR(b *testing.B) {
	m := adder()
	ctx := context.Background()
	data := mustCBOR(b, map[string]any{"a": int64(1), "b": int64(2)})
	for _, method := range []string{"add", "add_dynamic"} {
		name := map[string]string{"add": "typed", "add_dynamic": "dynamic"}[method]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out, err := m.InvokeCBOR(ctx, method, data)
				if err != nil || len(out) != 6 {
					b.Fatal(out, err)
				}
			}
		})
	}
}

// BenchmarkInvoke is the native transport's call: maps in and out.
func BenchmarkInvoke(b *testing.B) {
	m := adder()
	ctx := context.Background()
	params := map[string]any{"a": int64(1), "b": int64(2)}
	for _, method := range []string{"add", "add_dynamic"} {
		name := map[string]string{"add": "typed", "add_dynamic": "dynamic"}[method]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out, err := m.Invoke(ctx, method, params)
				if err != nil || len(out) != 1 {
					b.Fatal(out, err)
				}
			}
		})
	}
}

// BenchmarkCheckResult is what Invoke adds to a dynamic method's call: the
// walk that keeps values outside the value model from crossing, for a
// one-field result and a 20-field one with a nested list and map.
func BenchmarkCheckResult(b *testing.B) {
	big := map[string]any{"items": []any{int64(1), "two", 3.0, map[string]any{"k": []byte("v")}}}
	for i := range 19 {
		big[string(rune('a'+i))] = int64(i)
	}
	for name, out := range map[string]map[string]any{"1-field": {"sum": int64(3)}, "20-fields": big} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := CheckParams(out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
