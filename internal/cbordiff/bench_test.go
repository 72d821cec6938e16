package cbordiff

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// The payloads: value-model maps of three sizes, as params and results are.

// smallPayload is the {"a":1,"b":2} of the transport measurements.
func smallPayload() map[string]any {
	return map[string]any{"a": int64(1), "b": int64(2)}
}

// mediumPayload has about 20 fields, some nested (about 400 bytes of CBOR).
func mediumPayload() map[string]any {
	return map[string]any{
		"id": int64(123456789), "name": "Ada Lovelace", "email": "ada@example.com", "active": true,
		"score": 98.25, "ratio": 0.1, "count": int64(42), "delta": int64(-7), "nothing": nil,
		"tags":   []any{"math", "engines", "poetry"},
		"blob":   []byte("0123456789abcdef"),
		"limits": map[string]any{"rps": int64(100), "burst": int64(250), "timeout_ms": int64(1500)},
		"address": map[string]any{
			"street": "12 St James's Square", "city": "London", "zip": "SW1Y 4JH",
			"geo": map[string]any{"lat": 51.5074, "lon": -0.1278},
		},
		"created": int64(1700000000), "updated": int64(1700003600), "version": "1.4.2",
		"flags": []any{true, false, true}, "weights": []any{0.5, 1.5, 2.25},
	}
}

// largePayload is about 4 KiB of CBOR: a page of 60 records.
func largePayload() map[string]any {
	items := make([]any, 60)
	for i := range items {
		items[i] = map[string]any{
			"id": int64(1000 + i), "sku": fmt.Sprintf("SKU-%05d", i*37), "price": float64(i)*1.25 + 0.99,
			"qty": int64(i % 7), "tags": []any{"new", fmt.Sprintf("t%d", i%5)},
			"dims": map[string]any{"w": int64(10 + i), "h": int64(20 + i)},
		}
	}
	return map[string]any{"page": int64(3), "per_page": int64(60), "total": int64(1234), "items": items,
		"next": "/v1/items?page=4", "etag": []byte("\x8f\x12\xa9\x00\x7f\x33\x10\xee")}
}

var payloads = []struct {
	name string
	v    map[string]any
}{
	{"small", smallPayload()},
	{"medium", mediumPayload()},
	{"large", largePayload()},
}

func TestPayloadSizes(t *testing.T) {
	for _, p := range payloads {
		ours, _ := cbor.Marshal(p.v)
		theirs, _ := EncMode.Marshal(p.v)
		js, _ := json.Marshal(p.v)
		t.Logf("%-6s sdk/cbor %5d B, fxamacker %5d B, json %5d B", p.name, len(ours), len(theirs), len(js))
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, p := range payloads {
		b.Run(p.name+"/hotmod", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cbor.Marshal(p.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/hotmod-append", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = cbor.Append(buf[:0], p.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/hotmod-det", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cbor.MarshalDeterministic(p.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/fxamacker", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncMode.Marshal(p.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/fxamacker-det", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DetEncMode.Marshal(p.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(p.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, p := range payloads {
		data, _ := cbor.Marshal(p.v)
		js, _ := json.Marshal(p.v)
		b.Run(p.name+"/hotmod", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cbor.Unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/fxamacker", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var v any
				if err := DecMode.Unmarshal(data, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
		// encoding/json decodes numbers as float64: faster to write, and
		// wrong for the value model. For reference only.
		b.Run(p.name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var v any
				if err := json.Unmarshal(js, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The typed path: {"a":1,"b":2} straight into a struct, no map.
	b.Run("small/hotmod-typed", func(b *testing.B) {
		data, _ := cbor.Marshal(smallPayload())
		d := cbor.NewDecoder(data, cbor.DefaultLimits)
		var p struct{ A, B int64 }
		b.ReportAllocs()
		for b.Loop() {
			d.Reset(data)
			n, err := d.ReadMapHeader()
			for i := 0; err == nil && i < n; i++ {
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
			if err != nil || p.A+p.B != 3 {
				b.Fatal(err)
			}
		}
	})
}
