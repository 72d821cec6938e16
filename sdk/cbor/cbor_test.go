package cbor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// equal compares value-model values: floats by bits (any NaN equals any
// NaN, -0 differs from 0), nil and empty slices and maps alike.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, int64, string:
		return a == b
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if x != x || y != y {
			return x != x && y != y
		}
		return math.Float64bits(x) == math.Float64bits(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// show formats a value with its types, for failure messages.
func show(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(x))
		for k, e := range x {
			parts = append(parts, fmt.Sprintf("%q: %s", k, show(e)))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprintf("%T(%#v)", v, v)
}

// rfcVectors are RFC 8949 Appendix A's examples that fall in the value
// model. encodes says whether Marshal writes exactly these bytes (it never
// writes indefinite lengths, and writes NaN and infinities in half
// precision).
var rfcVectors = []struct {
	hex     string
	v       any
	encodes bool
}{
	{"00", int64(0), true},
	{"01", int64(1), true},
	{"0a", int64(10), true},
	{"17", int64(23), true},
	{"1818", int64(24), true},
	{"1819", int64(25), true},
	{"1864", int64(100), true},
	{"1903e8", int64(1000), true},
	{"1a000f4240", int64(1000000), true},
	{"1b000000e8d4a51000", int64(1000000000000), true},
	{"20", int64(-1), true},
	{"29", int64(-10), true},
	{"3863", int64(-100), true},
	{"3903e7", int64(-1000), true},
	{"f90000", 0.0, true},
	{"f98000", math.Copysign(0, -1), true},
	{"f93c00", 1.0, true},
	{"fb3ff199999999999a", 1.1, true},
	{"f93e00", 1.5, true},
	{"f97bff", 65504.0, true},
	{"fa47c35000", 100000.0, true},
	{"fa7f7fffff", 3.4028234663852886e+38, true},
	{"fb7e37e43c8800759c", 1.0e+300, true},
	{"f90001", 5.960464477539063e-8, true},
	{"f90400", 0.00006103515625, true},
	{"f9c400", -4.0, true},
	{"fbc010666666666666", -4.1, true},
	{"f97c00", math.Inf(1), true},
	{"f97e00", math.NaN(), true},
	{"f9fc00", math.Inf(-1), true},
	{"fa7f800000", math.Inf(1), false},
	{"fa7fc00000", math.NaN(), false},
	{"faff800000", math.Inf(-1), false},
	{"fb7ff0000000000000", math.Inf(1), false},
	{"fb7ff8000000000000", math.NaN(), false},
	{"fbfff0000000000000", math.Inf(-1), false},
	{"f4", false, true},
	{"f5", true, true},
	{"f6", nil, true},
	{"f7", nil, false}, // undefined decodes as nil
	{"40", []byte{}, true},
	{"4401020304", []byte{1, 2, 3, 4}, true},
	{"60", "", true},
	{"6161", "a", true},
	{"6449455446", "IETF", true},
	{"62225c", "\"\\", true},
	{"62c3bc", "\u00fc", true},
	{"63e6b0b4", "\u6c34", true},
	{"64f0908591", "\U00010151", true},
	{"80", []any{}, true},
	{"83010203", []any{int64(1), int64(2), int64(3)}, true},
	{"8301820203820405", []any{int64(1), []any{int64(2), int64(3)}, []any{int64(4), int64(5)}}, true},
	{"98190102030405060708090a0b0c0d0e0f101112131415161718181819", oneTo25(), true},
	{"a0", map[string]any{}, true},
	{"a26161016162820203", map[string]any{"a": int64(1), "b": []any{int64(2), int64(3)}}, false}, // map order
	{"826161a161626163", []any{"a", map[string]any{"b": "c"}}, true},
	{"a56161614161626142616361436164614461656145",
		map[string]any{"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}, false},
	{"5f42010243030405ff", []byte{1, 2, 3, 4, 5}, false},
	{"7f657374726561646d696e67ff", "streaming", false},
	{"9fff", []any{}, false},
	{"9f018202039f0405ffff", []any{int64(1), []any{int64(2), int64(3)}, []any{int64(4), int64(5)}}, false},
	{"9f01820203820405ff", []any{int64(1), []any{int64(2), int64(3)}, []any{int64(4), int64(5)}}, false},
	{"83018202039f0405ff", []any{int64(1), []any{int64(2), int64(3)}, []any{int64(4), int64(5)}}, false},
	{"83019f0203ff820405", []any{int64(1), []any{int64(2), int64(3)}, []any{int64(4), int64(5)}}, false},
	{"9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", oneTo25(), false},
	{"bf61610161629f0203ffff", map[string]any{"a": int64(1), "b": []any{int64(2), int64(3)}}, false},
	{"826161bf61626163ff", []any{"a", map[string]any{"b": "c"}}, false},
	{"bf6346756ef563416d7421ff", map[string]any{"Fun": true, "Amt": int64(-2)}, false},
}

func oneTo25() []any {
	a := make([]any, 25)
	for i := range a {
		a[i] = int64(i + 1)
	}
	return a
}

func TestRFC8949Vectors(t *testing.T) {
	for _, tc := range rfcVectors {
		data := unhex(t, tc.hex)
		got, err := Unmarshal(data)
		if err != nil {
			t.Errorf("Unmarshal(%s): %v", tc.hex, err)
			continue
		}
		if !equal(got, tc.v) {
			t.Errorf("Unmarshal(%s) = %s, want %s", tc.hex, show(got), show(tc.v))
		}
		det, err := MarshalDeterministic(tc.v)
		if err != nil {
			t.Errorf("MarshalDeterministic(%s): %v", show(tc.v), err)
			continue
		}
		if tc.encodes {
			if !bytes.Equal(det, data) {
				t.Errorf("MarshalDeterministic(%s) = %x, want %s", show(tc.v), det, tc.hex)
			}
			if enc, _ := Marshal(tc.v); !bytes.Equal(enc, data) {
				t.Errorf("Marshal(%s) = %x, want %s", show(tc.v), enc, tc.hex)
			}
		}
		if back, err := Unmarshal(det); err != nil || !equal(back, tc.v) {
			t.Errorf("round trip of %s via %x = %s, %v", show(tc.v), det, show(back), err)
		}
	}
	// The map vectors, deterministically: keys sort as RFC 8949 §4.2.1 says.
	for _, h := range []string{"a26161016162820203", "a56161614161626142616361436164614461656145"} {
		v, _ := Unmarshal(unhex(t, h))
		if det, _ := MarshalDeterministic(v); hex.EncodeToString(det) != h {
			t.Errorf("MarshalDeterministic(%s) = %x, want %s", show(v), det, h)
		}
	}
}

// TestRejected covers input outside the value model or not well-formed:
// each must fail with a DecodeError that says why and where.
func TestRejected(t *testing.T) {
	tests := []struct {
		name, hex, want string
	}{
		{"empty input", "", "offset 0: unexpected end of input"},
		{"uint over int64", "1bffffffffffffffff", "offset 0: integer 18446744073709551615 does not fit in int64"},
		{"2^63", "1b8000000000000000", "integer 9223372036854775808 does not fit in int64"},
		{"-2^64", "3bffffffffffffffff", "integer -18446744073709551616 does not fit in int64"},
		{"-2^63-1", "3b8000000000000000", "integer -9223372036854775809 does not fit in int64"},
		{"bignum", "c249010000000000000000", "offset 0: tag 2 (unsigned bignum) is not in the value model"},
		{"negative bignum", "c349010000000000000000", "tag 3 (negative bignum)"},
		{"date string", "c074323031332d30332d32315432303a30343a30305a", "tag 0 (date/time string)"},
		{"epoch", "c11a514b67b0", "tag 1 (epoch date/time)"},
		{"unknown tag", "d82076687474703a2f2f7777772e6578616d706c652e636f6d", "tag 32 (URI)"},
		{"big tag", "dbffffffffffffffff00", "tag 18446744073709551615 is not"},
		{"tag in array", "8201c100", "offset 2: tag 1"},
		{"simple 16", "f0", "simple value 16 is not in the value model"},
		{"simple 255", "f8ff", "simple value 255 is not in the value model"},
		{"simple 0", "e0", "simple value 0 is not"},
		{"simple in two bytes", "f818", "simple value 24 must be encoded in one byte"},
		{"map with int keys", "a201020304", "offset 1: map key is an unsigned integer; keys must be text strings"},
		{"map with bytes key", "a1410001", "map key is a byte string"},
		{"map with array key", "a18001", "map key is an array"},
		{"map with negative key", "a12001", "map key is a negative integer"},
		{"map with null key", "a1f601", "map key is null"},
		{"map with float key", "a1f93c0001", "map key is a float"},
		{"map with tagged key", "a1c16161 01", "tag 1"},
		{"duplicate key", "a2616101616102", "offset 4: duplicate map key \"a\""},
		{"duplicate key, indefinite", "bf616101616102ff", "duplicate map key \"a\""},
		{"invalid UTF-8", "62c328", "text string is not valid UTF-8 (at byte 0 of the string)"},
		{"invalid UTF-8 later", "6461626380", "at byte 3"},
		{"surrogate", "63eda080", "not valid UTF-8"},
		{"invalid UTF-8 key", "a162ff0001", "not valid UTF-8"},
		{"invalid UTF-8 chunk", "7f61ff ff", "not valid UTF-8"},
		{"split code point", "7f61c361bcff", "not valid UTF-8"},
		{"trailing bytes", "0000", "offset 1: 1 trailing bytes after the value"},
		{"break alone", "ff", "offset 0: unexpected break"},
		{"break in definite array", "81ff", "offset 1: unexpected break"},
		{"break as map value", "bf6161ff", "unexpected break"},
		{"reserved ai", "1c", "reserved additional information 28"},
		{"reserved ai 30", "7e", "reserved additional information 30"},
		{"indefinite uint", "1f", "additional information 31 is not valid for major type 0"},
		{"indefinite tag", "df", "additional information 31 is not valid for major type 6"},
		{"chunk of other type", "5f6161ff", "a chunk of an indefinite-length byte string is a text string"},
		{"nested indefinite chunk", "7f7f6161ffff", "want a definite-length one"},
		{"unterminated indefinite", "9f01", "offset 2: unexpected end of input"},
		{"huge array", "9b4000000000000000", "array of 4611686018427387904 entries exceeds the limit"},
		{"huge map", "bb4000000000000000", "map of 4611686018427387904 entries exceeds the limit"},
		{"array longer than input", "9a000fffff00", "array declares 1048575 entries but only 1 bytes remain"},
		{"map longer than input", "a3616100", "map declares 3 entries but only 3 bytes remain"},
		{"huge string", "5b4000000000000000", "string of 4611686018427387904 bytes but only 0 bytes remain"},
		{"huge text", "7b7fffffffffffffff61", "string of 9223372036854775807 bytes"},
		{"max length string", "7bffffffffffffffff", "string of 18446744073709551615 bytes"},
		{"truncated head", "1b0000", "unexpected end of input"},
		{"self-describe alone", "d9d9f7", "offset 3: unexpected end of input"},
		{"tagged break", "9fd9d9f7ffff", "unexpected break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(unhex(t, tc.hex))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Unmarshal(%s) error = %v, want a *DecodeError", tc.hex, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "cbor: offset ") {
				t.Fatalf("Unmarshal(%s) error = %q, want it to contain %q", tc.hex, err, tc.want)
			}
			// Skip checks exactly what Unmarshal does (no map here has
			// duplicate keys but the duplicate-key cases).
			d := NewDecoder(unhex(t, tc.hex), DefaultLimits)
			if err := d.Skip(); err == nil && d.Done() && !strings.Contains(tc.name, "duplicate") {
				t.Fatalf("Skip(%s) accepted what Unmarshal refuses", tc.hex)
			}
		})
	}
}

func TestAccepted(t *testing.T) {
	tests := []struct {
		name, hex string
		want      any
	}{
		{"self-describe", "d9d9f7a16161f5", map[string]any{"a": true}},
		{"self-describe twice", "d9d9f7d9d9f701", int64(1)},
		{"self-describe inside", "82d9d9f701a1d9d9f76161d9d9f702", []any{int64(1), map[string]any{"a": int64(2)}}},
		{"non-minimal int", "1b0000000000000001", int64(1)},
		{"non-minimal length", "7800", ""},
		{"non-minimal array", "9a0000000101", []any{int64(1)}},
		{"max int64", "1b7fffffffffffffff", int64(math.MaxInt64)},
		{"min int64", "3b7fffffffffffffff", int64(math.MinInt64)},
		{"undefined", "f7", nil},
		{"undefined in map", "a16161f7", map[string]any{"a": nil}},
		{"empty indefinite text", "7fff", ""},
		{"empty indefinite bytes", "5fff", []byte{}},
		{"indefinite text of empty chunks", "7f6060ff", ""},
		{"empty indefinite map", "bfff", map[string]any{}},
		{"half subnormal negative", "f98001", -5.960464477539063e-8},
		{"float32 subnormal", "fa00000001", float64(math.SmallestNonzeroFloat32)},
		{"U+FFFD", "63efbfbd", "\ufffd"},
	}
	for _, tc := range tests {
		got, err := Unmarshal(unhex(t, tc.hex))
		if err != nil || !equal(got, tc.want) {
			t.Errorf("%s: Unmarshal(%s) = %s, %v; want %s", tc.name, tc.hex, show(got), err, show(tc.want))
		}
	}
}

func TestRoundTrip(t *testing.T) {
	nested := map[string]any{
		"null": nil, "t": true, "f": false,
		"ints":   []any{int64(0), int64(23), int64(24), int64(255), int64(256), int64(65535), int64(65536), int64(math.MaxUint32), int64(math.MaxUint32 + 1), int64(math.MaxInt64), int64(-1), int64(-24), int64(-25), int64(-256), int64(-257), int64(math.MinInt64)},
		"floats": []any{0.0, math.Copysign(0, -1), 1.0, -1.5, 0.1, 1e300, 5e-324, math.MaxFloat64, math.Inf(1), math.Inf(-1), float64(math.MaxFloat32), 65504.0, 65505.0, 6.103515625e-05, 6.097555160522461e-05},
		"s":      "héllo, 世界 🎉", "empty": "", "b": []byte{0, 1, 0xff}, "eb": []byte{},
		"arr":  []any{},
		"m":    map[string]any{},
		"deep": map[string]any{"a": []any{map[string]any{"b": []any{[]any{"c", []byte("d"), nil}}}}},
		"long": strings.Repeat("x", 70000),
		"":     "empty key",
	}
	values := []any{nil, true, false, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64),
		0.0, math.Copysign(0, -1), math.NaN(), math.Inf(1), 3.25, "", "a", []byte{}, []byte("bytes"),
		[]any{}, map[string]any{}, nested, []any{nested, nested}}
	for _, v := range values {
		for _, det := range []bool{false, true} {
			enc, err := marshal(v, det)
			if err != nil {
				t.Fatalf("marshal(%s, %v): %v", show(v), det, err)
			}
			got, err := Unmarshal(enc)
			if err != nil {
				t.Fatalf("Unmarshal(marshal(%.200s)): %v", show(v), err)
			}
			if !equal(got, v) {
				t.Fatalf("round trip (det %v):\n got %.300s\nwant %.300s", det, show(got), show(v))
			}
			// Append agrees with Marshal and appends.
			app, err := Append([]byte("prefix"), v)
			if err != nil || string(app[:6]) != "prefix" {
				t.Fatalf("Append: %v", err)
			}
			if back, err := Unmarshal(app[6:]); err != nil || !equal(back, v) {
				t.Fatalf("Append round trip: %v", err)
			}
		}
	}
}

func TestMarshalGoKinds(t *testing.T) {
	tests := []struct {
		in   any
		want any
	}{
		{int(-7), int64(-7)},
		{int8(-128), int64(-128)},
		{int16(300), int64(300)},
		{int32(-70000), int64(-70000)},
		{uint8(255), int64(255)},
		{uint16(65535), int64(65535)},
		{uint32(math.MaxUint32), int64(math.MaxUint32)},
		{uint(42), int64(42)},
		{uint64(math.MaxInt64), int64(math.MaxInt64)},
		{float32(1.5), 1.5},
		{float32(0.1), float64(float32(0.1))},
		{float32(math.NaN()), math.NaN()},
		{[]any(nil), []any{}},
		{map[string]any(nil), map[string]any{}},
		{[]byte(nil), []byte{}},
	}
	for _, tc := range tests {
		enc, err := Marshal(tc.in)
		if err != nil {
			t.Errorf("Marshal(%T %v): %v", tc.in, tc.in, err)
			continue
		}
		got, err := Unmarshal(enc)
		if err != nil || !equal(got, tc.want) {
			t.Errorf("Marshal(%T %v) decodes as %s, %v; want %s", tc.in, tc.in, show(got), err, show(tc.want))
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	cyclic := []any{nil}
	cyclic[0] = cyclic
	deep := any(int64(1))
	for i := 0; i < 65; i++ {
		deep = []any{deep}
	}
	tests := []struct {
		in   any
		want string
	}{
		{map[string]any{"items": []any{1, 2, time.Time{}}}, "cbor: value.items[2]: time.Time is not in the value model"},
		{[]any{map[string]any{"x": struct{}{}}}, "cbor: value[0].x: struct {} is not in the value model"},
		{uint64(math.MaxUint64), "cbor: value: 18446744073709551615 does not fit in int64"},
		{map[string]any{"u": uint(1 << 63)}, "cbor: value.u: 9223372036854775808 does not fit in int64"},
		{[]string{"a"}, "cbor: value: []string is not in the value model"},
		{map[string]string{}, "map[string]string is not in the value model"},
		{map[string]any{"p": new(int64)}, "value.p: *int64 is not in the value model"},
		{"\xff", "cbor: value: string is not valid UTF-8"},
		{map[string]any{"\xff": 1}, "cbor: value: map key \"\\xff\" is not valid UTF-8"},
		{cyclic, "nested deeper than 64 levels (is the value cyclic?)"},
		{deep, "nested deeper than 64 levels"},
	}
	for _, tc := range tests {
		for _, f := range []func(any) ([]byte, error){Marshal, MarshalDeterministic,
			func(v any) ([]byte, error) { return Append(nil, v) }} {
			_, err := f(tc.in)
			var ee *EncodeError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Marshal(%T) error = %v, want %q", tc.in, err, tc.want)
			}
		}
	}
	// 64 levels is fine.
	ok := any(int64(1))
	for i := 0; i < 64; i++ {
		ok = map[string]any{"k": ok}
	}
	enc, err := Marshal(ok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(append([]byte{0x81}, enc...)); err == nil || !strings.Contains(err.Error(), "nested deeper than 64 levels") {
		t.Fatalf("65 levels: %v", err)
	}
}

func TestFloatEncodingWidth(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "f90000"},
		{1, "f93c00"},
		{0.5, "f93800"},
		{65504, "f97bff"},
		{65505, "fa477fe100"},            // not a half, is a single
		{0.1, "fb3fb999999999999a"},      // needs a double
		{5.960464477539063e-8, "f90001"}, // smallest half subnormal
		{2.9802322387695312e-8, "fa33000000"},
		{6.097555160522461e-05, "f903ff"}, // largest half subnormal
		{1.0000001192092896, "fa3f800001"},
		{float64(math.SmallestNonzeroFloat32), "fa00000001"},
		{math.SmallestNonzeroFloat64, "fb0000000000000001"},
		{math.Float64frombits(0x7ff8000000000001), "f97e00"}, // NaN payloads are not kept
		{math.Float64frombits(0xfff0000000000001), "f97e00"},
		{math.MaxFloat64, "fb7fefffffffffffff"},
		{1e39, "fb48078287f49c4a1d"}, // overflows single precision
	}
	for _, tc := range tests {
		if got := hex.EncodeToString(AppendFloat(nil, tc.f)); got != tc.want {
			t.Errorf("AppendFloat(%g) = %s, want %s", tc.f, got, tc.want)
		}
	}
	// Every half decodes to a float64 that encodes back to the same half.
	for h := 0; h < 1<<16; h++ {
		f := float16to64(uint16(h))
		got := AppendFloat(nil, f)
		if f != f {
			continue
		}
		if want := []byte{0xf9, byte(h >> 8), byte(h)}; !bytes.Equal(got, want) {
			t.Fatalf("half %04x = %g encodes as %x", h, f, got)
		}
	}
}

func TestDeterministic(t *testing.T) {
	m := map[string]any{}
	for i := 0; i < 300; i++ {
		m[fmt.Sprintf("k%d", i*7919%1000)] = map[string]any{"z": int64(i), "a": int64(i), "bb": []any{float64(i) / 3}}
	}
	first, err := MarshalDeterministic(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, _ := MarshalDeterministic(m)
		if !bytes.Equal(first, again) {
			t.Fatal("MarshalDeterministic is not stable")
		}
	}
	// The keys of every map come sorted by their encoded bytes.
	d := NewDecoder(first, DefaultLimits)
	var checkSorted func() error
	checkSorted = func() error {
		k, err := d.Peek()
		if err != nil {
			return err
		}
		if k != KindMap {
			return d.Skip()
		}
		n, _ := d.ReadMapHeader()
		var prev []byte
		for i := 0; i < n; i++ {
			start := d.Offset()
			if _, err := d.ReadStringBytes(); err != nil {
				return err
			}
			enc := first[start:d.Offset()]
			if prev != nil && bytes.Compare(prev, enc) >= 0 {
				return fmt.Errorf("key %x after %x", enc, prev)
			}
			prev = enc
			if err := checkSorted(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := checkSorted(); err != nil {
		t.Fatal(err)
	}
	// Lengths decide before bytes: "b" < "aa"; 23-byte keys before 24-byte ones.
	k23, k24 := strings.Repeat("z", 23), strings.Repeat("a", 24)
	got, _ := MarshalDeterministic(map[string]any{"aa": 1, "b": 2, k24: 3, k23: 4, "": 5})
	want := "a5" + "60" + "05" + "6162" + "02" + "626161" + "01" + "77" + hex.EncodeToString([]byte(k23)) + "04" +
		"7818" + hex.EncodeToString([]byte(k24)) + "03"
	if hex.EncodeToString(got) != want {
		t.Fatalf("key order:\n got %x\nwant %s", got, want)
	}
}

// TestTruncated cuts a valid encoding at every offset: every prefix must fail
// cleanly, for Unmarshal, the Decoder's ReadValue and Skip.
func TestTruncated(t *testing.T) {
	v := map[string]any{"a": int64(1), "b": []any{1.5, 1.1, "text", []byte{1, 2}, int64(-300), nil, true},
		"c": map[string]any{"d": int64(math.MaxInt64), "e": 100000.0}, "long": strings.Repeat("y", 300)}
	inputs := [][]byte{}
	enc, _ := MarshalDeterministic(v)
	inputs = append(inputs, enc)
	for _, tc := range rfcVectors {
		inputs = append(inputs, unhex(t, tc.hex))
	}
	for _, data := range inputs {
		for i := 0; i < len(data); i++ {
			prefix := data[:i:i]
			if _, err := Unmarshal(prefix); err == nil {
				t.Fatalf("Unmarshal(%x) (prefix of %x) succeeded", prefix, data)
			}
			d := NewDecoder(prefix, DefaultLimits)
			if _, err := d.ReadValue(); err == nil {
				t.Fatalf("ReadValue(%x) succeeded", prefix)
			}
			d.Reset(prefix)
			if err := d.Skip(); err == nil {
				t.Fatalf("Skip(%x) succeeded", prefix)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	nest := func(n int) []byte {
		b := bytes.Repeat([]byte{0x81}, n)
		return append(b, 0x00)
	}
	if _, err := Unmarshal(nest(64)); err != nil {
		t.Fatalf("64 levels: %v", err)
	}
	_, err := Unmarshal(nest(65))
	if err == nil || !strings.Contains(err.Error(), "offset 64: arrays and maps nested deeper than 64 levels") {
		t.Fatalf("65 levels: %v", err)
	}
	if _, err := UnmarshalWithLimits(nest(3), Limits{MaxDepth: 2}); err == nil {
		t.Fatal("MaxDepth 2 accepted 3 levels")
	}
	// Indefinite nesting counts the same.
	indef := append(bytes.Repeat([]byte{0x9f}, 65), bytes.Repeat([]byte{0xff}, 65)...)
	if _, err := Unmarshal(indef); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("65 indefinite levels: %v", err)
	}
	// A very deep input with a raised MaxDepth is capped, not a stack overflow.
	if _, err := UnmarshalWithLimits(nest(100000), Limits{MaxDepth: math.MaxInt}); err == nil {
		t.Fatal("100000 levels accepted")
	}

	tests := []struct {
		lim       Limits
		hex, want string
	}{
		{Limits{MaxItems: 3}, "8401020304", "array of 4 entries exceeds the limit of 3"},
		{Limits{MaxItems: 3}, "9f01020304ff", "offset 0: array has more than 3 entries"},
		{Limits{MaxItems: 3}, "bf616101616202616303616404ff", "map has more than 3 entries"},
		{Limits{MaxItems: 3}, "a4616101616202616303616404", "map of 4 entries exceeds the limit of 3"},
		{Limits{MaxTotalItems: 6}, "83830102038301020300", "offset 5: array of 3 entries exceeds the limit of 6 data items"},
		{Limits{MaxTotalItems: 6}, "9f9f0102ff9f0102ffff", "offset 7: more than 6 data items"},
		{Limits{MaxTotalItems: 4}, "a2616101616202", "offset 0: map of 2 entries exceeds the limit of 4 data items"},
		{Limits{MaxBytes: 16}, "5000000000000000000000000000000000", "offset 0: input of 17 bytes exceeds the limit of 16 bytes"},
	}
	for _, tc := range tests {
		_, err := UnmarshalWithLimits(unhex(t, tc.hex), tc.lim)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("UnmarshalWithLimits(%s) error = %v, want %q", tc.hex, err, tc.want)
		}
		d := NewDecoder(unhex(t, tc.hex), tc.lim)
		if err := d.Skip(); err == nil {
			t.Errorf("Skip(%s) within %+v succeeded", tc.hex, tc.lim)
		}
	}
	// Zero fields take the defaults.
	if got := (Limits{MaxItems: 5}).resolve(); got.MaxDepth != 64 || got.MaxBytes != 16<<20 || got.MaxItems != 5 {
		t.Fatalf("resolve = %+v", got)
	}
}

// TestHugeDeclaredLengths checks that a short input claiming a huge length
// fails before anything sizeable is allocated. It counts bytes, not
// allocations: the race detector adds allocations of its own, but never
// megabytes.
func TestHugeDeclaredLengths(t *testing.T) {
	for _, h := range []string{"9b4000000000000000", "bb4000000000000000", "5b4000000000000000",
		"7b4000000000000000", "9a7fffffff", "ba7fffffff", "9bffffffffffffffff", "bbffffffffffffffff"} {
		data := unhex(t, h)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < 10; i++ {
			if _, err := UnmarshalWithLimits(data, Limits{MaxItems: math.MaxInt, MaxTotalItems: math.MaxInt}); err == nil {
				t.Fatalf("%s accepted", h)
			}
		}
		runtime.ReadMemStats(&after)
		if perRun := (after.TotalAlloc - before.TotalAlloc) / 10; perRun > 4096 { // the error and its message
			t.Errorf("%s: %d bytes allocated per decode", h, perRun)
		}
	}
}

func TestUnmarshalMap(t *testing.T) {
	m, err := UnmarshalMap(unhex(t, "a2616101616202"))
	if err != nil || m["a"] != int64(1) || m["b"] != int64(2) {
		t.Fatalf("UnmarshalMap = %v, %v", m, err)
	}
	if m, err := UnmarshalMap(unhex(t, "d9d9f7bfff")); err != nil || len(m) != 0 {
		t.Fatalf("UnmarshalMap(tagged empty) = %v, %v", m, err)
	}
	for h, want := range map[string]string{
		"83010203": "offset 0: the top-level value is an array; want a map",
		"f6":       "the top-level value is null; want a map",
		"a0a0":     "1 trailing bytes",
		"":         "unexpected end of input",
		"c0a0":     "tag 0",
	} {
		if _, err := UnmarshalMap(unhex(t, h)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("UnmarshalMap(%s) error = %v, want %q", h, err, want)
		}
	}
}

func TestDecoderStreaming(t *testing.T) {
	type params struct {
		A    int64
		B    float64
		Name string
		Tags []string
		Raw  []byte
		On   bool
		Opt  any
	}
	decode := func(d *Decoder) (params, error) {
		var p params
		n, err := d.ReadMapHeader()
		if err != nil {
			return p, err
		}
		for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
			key, err := d.ReadStringBytes()
			if err != nil {
				return p, err
			}
			switch string(key) {
			case "a":
				p.A, err = d.ReadInt()
			case "b":
				p.B, err = d.ReadFloat()
			case "name":
				p.Name, err = d.ReadString()
			case "tags":
				var m int
				if m, err = d.ReadArrayHeader(); err == nil {
					for j := 0; m < 0 && !d.AtBreak() || j < m; j++ {
						s, err := d.ReadString()
						if err != nil {
							return p, err
						}
						p.Tags = append(p.Tags, s)
					}
					if m < 0 {
						err = d.ReadBreak()
					}
				}
			case "raw":
				p.Raw, err = d.ReadBytes()
			case "on":
				p.On, err = d.ReadBool()
			case "opt":
				var k Kind
				if k, err = d.Peek(); err == nil && k == KindNull {
					err = d.ReadNull()
				} else if err == nil {
					p.Opt, err = d.ReadValue()
				}
			default:
				err = d.Skip()
			}
			if err != nil {
				return p, err
			}
		}
		if n < 0 {
			if err := d.ReadBreak(); err != nil {
				return p, err
			}
		}
		if !d.Done() {
			return p, fmt.Errorf("not done at %d", d.Offset())
		}
		return p, nil
	}
	in := map[string]any{"a": int64(-5), "b": 2.5, "name": "x", "tags": []any{"t1", "t2"}, "raw": []byte{9},
		"on": true, "opt": map[string]any{"k": []any{int64(1)}}, "skipped": map[string]any{"deep": []any{1.5, "s", nil}}}
	enc, _ := Marshal(in)
	want := params{A: -5, B: 2.5, Name: "x", Tags: []string{"t1", "t2"}, Raw: []byte{9}, On: true, Opt: in["opt"]}
	d := NewDecoder(enc, DefaultLimits)
	got, err := decode(d)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	// The same with indefinite lengths, as another language may send it.
	indef := unhex(t, "bf 6161 24 6162 f94100 646e616d65 7f6178ff 6474616773 9f 627431 627432 ff 63726177 5f4109ff 626f6e f5"+
		"636f7074 bf616b9f01ffff ff")
	d.Reset(indef)
	if got, err := decode(d); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("decode(indefinite) = %+v, %v", got, err)
	}

	// A kind mismatch leaves the Decoder where it was.
	d.Reset(unhex(t, "6161"))
	if _, err := d.ReadInt(); err == nil || !strings.Contains(err.Error(), "offset 0: expected an integer, got a text string") {
		t.Fatalf("ReadInt on text: %v", err)
	}
	if d.Offset() != 0 {
		t.Fatalf("offset after mismatch = %d", d.Offset())
	}
	if s, err := d.ReadString(); s != "a" || err != nil || !d.Done() {
		t.Fatalf("ReadString = %q, %v", s, err)
	}
	if _, err := d.Peek(); err == nil || !strings.Contains(err.Error(), "unexpected end of input") {
		t.Fatalf("Peek at end: %v", err)
	}
	if err := d.ReadBreak(); err == nil {
		t.Fatal("ReadBreak at end succeeded")
	}

	// Peek names each kind.
	kinds := map[string]Kind{"f6": KindNull, "f7": KindNull, "f4": KindBool, "00": KindInt, "3b7fffffffffffffff": KindInt,
		"f90000": KindFloat, "fa00000000": KindFloat, "fb0000000000000000": KindFloat, "60": KindString, "40": KindBytes,
		"80": KindArray, "a0": KindMap, "d9d9f700": KindInt}
	for h, want := range kinds {
		d.Reset(unhex(t, h))
		if k, err := d.Peek(); k != want || err != nil {
			t.Errorf("Peek(%s) = %v, %v; want %v", h, k, err, want)
		}
		if err := d.Skip(); err != nil || !d.Done() {
			t.Errorf("Skip(%s) = %v", h, err)
		}
	}
	for h, want := range map[string]string{"ff": "unexpected break", "f0": "simple value 16", "c1": "tag 1", "1c": "reserved"} {
		d.Reset(unhex(t, h))
		if k, err := d.Peek(); k != KindInvalid || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Peek(%s) = %v, %v; want %q", h, k, err, want)
		}
	}
	if KindMap.String() != "map" || Kind(99).String() != "Kind(99)" {
		t.Error("Kind.String")
	}

	// Integers out of range, and headers checked against limits.
	d.Reset(unhex(t, "1bffffffffffffffff"))
	if _, err := d.ReadInt(); err == nil || !strings.Contains(err.Error(), "integer 18446744073709551615 does not fit in int64") {
		t.Fatalf("ReadInt(2^64-1): %v", err)
	}
	d.Reset(unhex(t, "9b4000000000000000"))
	if _, err := d.ReadArrayHeader(); err == nil || d.Offset() != 0 {
		t.Fatalf("ReadArrayHeader(huge) = %v at %d", err, d.Offset())
	}
	d.Reset(unhex(t, "83"))
	if _, err := d.ReadArrayHeader(); err == nil || !strings.Contains(err.Error(), "array declares 3 entries but only 0 bytes remain") {
		t.Fatalf("ReadArrayHeader(short) = %v", err)
	}
	d.Reset(unhex(t, "a1 01 02"))
	if n, err := d.ReadMapHeader(); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if _, err := d.ReadStringBytes(); err == nil || !strings.Contains(err.Error(), "expected a text string, got an unsigned integer") {
		t.Fatalf("ReadStringBytes on int key: %v", err)
	}
	// MaxTotalItems counts everything read since Reset.
	d = NewDecoder(unhex(t, "010203"), Limits{MaxTotalItems: 2})
	_, _ = d.ReadInt()
	_, _ = d.ReadInt()
	if _, err := d.ReadInt(); err == nil || !strings.Contains(err.Error(), "more than 2 data items") {
		t.Fatalf("third ReadInt: %v", err)
	}
	d.Reset(unhex(t, "01"))
	if _, err := d.ReadInt(); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
	var zero Decoder
	zero.Reset(unhex(t, "a16161f5"))
	if v, err := zero.ReadValue(); err != nil || !equal(v, map[string]any{"a": true}) {
		t.Fatalf("zero Decoder: %v, %v", v, err)
	}
}

func TestDecoderAllocations(t *testing.T) {
	enc, _ := Marshal(map[string]any{"alpha": int64(1), "beta": int64(-20000), "gamma": 1.5, "delta": "hello", "on": true})
	d := NewDecoder(enc, DefaultLimits)
	var sink int64
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(enc)
		n, _ := d.ReadMapHeader()
		for i := 0; i < n; i++ {
			key, _ := d.ReadStringBytes()
			switch string(key) {
			case "alpha", "beta":
				v, _ := d.ReadInt()
				sink += v
			case "gamma":
				f, _ := d.ReadFloat()
				sink += int64(f)
			case "on":
				b, _ := d.ReadBool()
				if b {
					sink++
				}
			default:
				_ = d.Skip()
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("typed decoding allocated %v times", allocs)
	}
	// All the strings of a small message share one copy of it.
	d.Reset(enc)
	var keys []string
	allocs = testing.AllocsPerRun(100, func() {
		d.Reset(enc)
		keys = keys[:0]
		n, _ := d.ReadMapHeader()
		for i := 0; i < n; i++ {
			k, _ := d.ReadString()
			keys = append(keys, k)
			_ = d.Skip()
		}
	})
	if allocs != 1 {
		t.Fatalf("reading 5 keys allocated %v times, want 1", allocs)
	}
	small, _ := Marshal(map[string]any{"a": int64(1), "b": int64(2)})
	if a := testing.AllocsPerRun(100, func() { _, _ = Unmarshal(small) }); a > 3 {
		t.Fatalf("Unmarshal(%x) allocated %v times", small, a)
	}
	m := map[string]any{"a": int64(1), "b": int64(2)}
	if a := testing.AllocsPerRun(100, func() { _, _ = Marshal(m) }); a > 1 {
		t.Fatalf("Marshal allocated %v times", a)
	}
	buf := make([]byte, 0, 64)
	if a := testing.AllocsPerRun(100, func() { buf, _ = Append(buf[:0], m) }); a != 0 {
		t.Fatalf("Append allocated %v times", a)
	}
}

// TestStringsDoNotAliasInput checks that decoded strings and bytes survive
// the input being overwritten.
func TestStringsDoNotAliasInput(t *testing.T) {
	for _, size := range []int{10, sharedStringMax + 10} {
		in := map[string]any{"k": "value", "b": []byte("bytes"), "pad": strings.Repeat("p", size)}
		enc, _ := Marshal(in)
		v, err := Unmarshal(enc)
		if err != nil {
			t.Fatal(err)
		}
		for i := range enc {
			enc[i] = 'X'
		}
		if !equal(v, in) {
			t.Fatalf("size %d: decoded value changed with its input", size)
		}
	}
}

// TestFloatRoundTripRandom: every float64 (NaN aside) survives AppendFloat
// and decoding bit for bit, whatever width it is written in.
func TestFloatRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 300000; i++ {
		var f float64
		switch i % 3 {
		case 0:
			f = math.Float64frombits(r.Uint64())
		case 1:
			f = float64(math.Float32frombits(r.Uint32()))
		default:
			f = float16to64(uint16(r.Uint32()))
		}
		enc := AppendFloat(nil, f)
		got, err := Unmarshal(enc)
		if err != nil || !equal(got, f) {
			t.Fatalf("%x (%g) encodes as %x, decodes as %v, %v", math.Float64bits(f), f, enc, got, err)
		}
	}
}

// TestConcurrentMarshal hammers the pooled encoders from many goroutines
// (run under -race): every result must be the same bytes.
func TestConcurrentMarshal(t *testing.T) {
	v := map[string]any{"a": []any{int64(1), "x", map[string]any{"k": 1.5, "j": nil}}, "b": []byte("b"), "c": int64(-3)}
	want, _ := MarshalDeterministic(v)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				got, err := MarshalDeterministic(v)
				if err == nil && !bytes.Equal(got, want) {
					err = fmt.Errorf("got %x, want %x", got, want)
				}
				if err == nil {
					_, err = Marshal(map[string]any{"bad": []any{make(chan int)}})
					if err == nil {
						err = errors.New("a channel encoded")
					} else {
						err = nil
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

var (
	halvesOnce sync.Once
	halves     map[uint64]uint16 // float64 bits → the half that widens to them
)

// appendFloatReference is AppendFloat written the obvious way, with float
// conversions, to check the bit-twiddling one against.
func appendFloatReference(dst []byte, f float64) []byte {
	if f != f {
		return append(dst, 0xf9, 0x7e, 0x00)
	}
	f32 := float32(f)
	if float64(f32) != f {
		b := math.Float64bits(f)
		return append(dst, 0xfb, byte(b>>56), byte(b>>48), byte(b>>40), byte(b>>32), byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
	}
	halvesOnce.Do(func() {
		halves = make(map[uint64]uint16)
		for h := 0; h < 1<<16; h++ {
			if g := float16to64(uint16(h)); g == g {
				halves[math.Float64bits(g)] = uint16(h)
			}
		}
	})
	if h, ok := halves[math.Float64bits(f)]; ok {
		return append(dst, 0xf9, byte(h>>8), byte(h))
	}
	b := math.Float32bits(f32)
	return append(dst, 0xfa, byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
}

func TestAppendFloatAgainstReference(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	check := func(f float64) {
		if got, want := AppendFloat(nil, f), appendFloatReference(nil, f); !bytes.Equal(got, want) {
			t.Fatalf("AppendFloat(%g = %x) = %x, want %x", f, math.Float64bits(f), got, want)
		}
	}
	for _, f := range floatInputs {
		check(f)
	}
	for i := 0; i < 3000; i++ {
		check(math.Float64frombits(r.Uint64()))
		check(float64(math.Float32frombits(r.Uint32())))
		// singles around the half range and the single subnormals
		check(math.Ldexp(float64(r.Int63n(1<<24)), -int(r.Int63n(180))))
		check(-math.Ldexp(float64(r.Int63n(1<<11)), -int(r.Int63n(40))))
	}
}
