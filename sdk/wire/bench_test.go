package wire

import (
	"testing"
	"time"
)

// BenchmarkAppendCall: the host's frame of a small typed call.
func BenchmarkAppendCall(b *testing.B) {
	m := Message{Kind: Call, ID: 12345, Method: "add", Params: Raw{0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x02}, Timeout: time.Second}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = Append(buf[:0], CBOR, &m)
	}
}

// BenchmarkDecodeCall: the child's decoding of that frame.
func BenchmarkDecodeCall(b *testing.B) {
	m := Message{Kind: Call, ID: 12345, Method: "add", Params: Raw{0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x02}, Timeout: time.Second}
	frame, _ := Append(nil, CBOR, &m)
	d := Decoder{Names: map[string]string{"add": "add"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := d.DecodeCBOR(frame[4:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeResult: the host's decoding of the reply's envelope (its
// value is decoded apart).
func BenchmarkDecodeResult(b *testing.B) {
	m := Message{Kind: Result, ID: 12345, Result: Raw{0xa1, 0x63, 's', 'u', 'm', 0x03}}
	frame, _ := Append(nil, CBOR, &m)
	d := Decoder{FromChild: true}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := d.DecodeCBOR(frame[4:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeJSONResult: the same in JSON (script modules).
func BenchmarkDecodeJSONResult(b *testing.B) {
	line := []byte(`{"t":"result","id":12345,"result":{"sum":3}}`)
	d := Decoder{Encoding: JSON, FromChild: true}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := d.DecodeJSON(line); err != nil {
			b.Fatal(err)
		}
	}
}
