package cbor

import (
	"bytes"
	"strings"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, tc := range rfcVectors {
		f.Add(unhex(f, tc.hex))
	}
	for _, h := range []string{
		"a26161016162820203", "a2616101616102", "bf61610161629f0203ffff", "1bffffffffffffffff",
		"9b4000000000000000", "7f657374726561646d696e67ff", "d9d9f7a0", "c11a514b67b0", "62c328", "f818",
	} {
		f.Add(unhex(f, h))
	}
}

// FuzzUnmarshal: decoding never panics; whatever decodes re-encodes (both
// ways) and decodes to the same value; the deterministic encoding is a fixed
// point; Skip accepts what Unmarshal accepts and stops where it stops.
func FuzzUnmarshal(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)

		d := NewDecoder(data, DefaultLimits)
		serr := d.Skip()
		if serr == nil && !d.Done() {
			serr = d.end()
		}
		if err == nil && serr != nil {
			t.Fatalf("Unmarshal accepts %x, Skip says %v", data, serr)
		}
		if err != nil {
			if serr == nil && !strings.Contains(err.Error(), "duplicate map key") {
				t.Fatalf("Unmarshal refuses %x (%v), Skip accepts it", data, err)
			}
			return
		}

		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(Unmarshal(%x)): %v", data, err)
		}
		back, err := Unmarshal(enc)
		if err != nil || !equal(back, v) {
			t.Fatalf("round trip of %x via %x: %s, %v; want %s", data, enc, show(back), err, show(v))
		}
		det, err := MarshalDeterministic(v)
		if err != nil {
			t.Fatalf("MarshalDeterministic: %v", err)
		}
		back, err = Unmarshal(det)
		if err != nil || !equal(back, v) {
			t.Fatalf("deterministic round trip of %x via %x: %s, %v", data, det, show(back), err)
		}
		if len(det) != len(enc) {
			t.Fatalf("Marshal and MarshalDeterministic differ in length: %x, %x", enc, det)
		}
		if det2, _ := MarshalDeterministic(back); !bytes.Equal(det, det2) {
			t.Fatalf("deterministic encoding is not a fixed point: %x, %x", det, det2)
		}
	})
}

// FuzzDecoder walks the input with the streaming API (Peek and the Read
// methods, indefinite lengths included) and checks that it agrees with
// ReadValue on what is accepted, where it stops and what the value is, under
// tight limits, and with a reused Decoder.
func FuzzDecoder(f *testing.F) {
	addSeeds(f)
	lim := Limits{MaxDepth: 8, MaxItems: 32, MaxTotalItems: 256, MaxBytes: 4096}
	walker := NewDecoder(nil, lim)
	reader := NewDecoder(nil, lim)
	f.Fuzz(func(t *testing.T, data []byte) {
		walker.Reset(data)
		reader.Reset(data)
		want, werr := reader.ReadValue()
		got, gerr := walk(walker, 0, lim.MaxDepth)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%x: ReadValue: %s, %v; walk: %s, %v", data, show(want), werr, show(got), gerr)
		}
		if werr != nil {
			return
		}
		if !equal(got, want) {
			t.Fatalf("%x: ReadValue = %s; walk = %s", data, show(want), show(got))
		}
		if walker.Offset() != reader.Offset() || walker.Done() != reader.Done() {
			t.Fatalf("%x: ReadValue stops at %d, walk at %d", data, reader.Offset(), walker.Offset())
		}
	})
}

// walk decodes one value with Peek and the typed Read methods, as a typed
// decoder would, checking depth and duplicate keys the way ReadValue does.
func walk(d *Decoder, depth, maxDepth int) (any, error) {
	k, err := d.Peek()
	if err != nil {
		return nil, err
	}
	switch k {
	case KindNull:
		return nil, d.ReadNull()
	case KindBool:
		return d.ReadBool()
	case KindInt:
		return d.ReadInt()
	case KindFloat:
		return d.ReadFloat()
	case KindString:
		if d.Offset()%2 == 0 {
			b, err := d.ReadStringBytes()
			return string(b), err
		}
		return d.ReadString()
	case KindBytes:
		return d.ReadBytes()
	case KindArray, KindMap:
		if depth >= maxDepth {
			return nil, errAt(d.Offset(), "too deep")
		}
	}
	if k == KindArray {
		n, err := d.ReadArrayHeader()
		if err != nil {
			return nil, err
		}
		a := []any{}
		for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
			if n < 0 && i >= d.lim.MaxItems {
				return nil, errAt(d.Offset(), "too many")
			}
			v, err := walk(d, depth+1, maxDepth)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if n < 0 {
			return a, d.ReadBreak()
		}
		return a, nil
	}
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
		if n < 0 && i >= d.lim.MaxItems {
			return nil, errAt(d.Offset(), "too many")
		}
		key, err := d.ReadString()
		if err != nil {
			return nil, err
		}
		v, err := walk(d, depth+1, maxDepth)
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, errAt(d.Offset(), "duplicate")
		}
		m[key] = v
	}
	if n < 0 {
		return m, d.ReadBreak()
	}
	return m, nil
}
