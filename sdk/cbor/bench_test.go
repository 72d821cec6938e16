package cbor

import (
	"math"
	"testing"
)

var floatInputs = []float64{0, 1.5, -4, 0.1, 1e300, 100000, 3.4028234663852886e+38, math.Pi, 2.5e-5, 65504}

// BenchmarkAppendFloat measures what writing the shortest exact width costs
// over always writing a double (the alternative the package did not take).
func BenchmarkAppendFloat(b *testing.B) {
	buf := make([]byte, 0, 16*len(floatInputs))
	b.Run("shortest", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			buf = buf[:0]
			for _, f := range floatInputs {
				buf = AppendFloat(buf, f)
			}
		}
		b.ReportMetric(float64(len(buf))/float64(len(floatInputs)), "B/float")
	})
	b.Run("double", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			buf = buf[:0]
			for _, f := range floatInputs {
				buf = appendDouble(buf, f)
			}
		}
		b.ReportMetric(float64(len(buf))/float64(len(floatInputs)), "B/float")
	})
}

func BenchmarkUnmarshalSmall(b *testing.B) {
	data, _ := Marshal(map[string]any{"a": int64(1), "b": int64(2)})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalSmall(b *testing.B) {
	m := map[string]any{"a": int64(1), "b": int64(2)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

// appendDouble is the alternative: always 9 bytes. It is not inlined, as
// AppendFloat is not, so the comparison is of the work alone.
//
//go:noinline
func appendDouble(dst []byte, f float64) []byte {
	u := math.Float64bits(f)
	return append(dst, 0xfb, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32),
		byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}
