package valuejson_test

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/valuejson"
	"github.com/hotmod/hotmod/sdk"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		v    any
		json string
	}{
		{nil, `null`},
		{true, `true`},
		{int64(-7), `-7`},
		{int64(math.MaxInt64), `9223372036854775807`},
		{int64(math.MinInt64), `-9223372036854775808`},
		{2.0, `2.0`},
		{-0.5, `-0.5`},
		{1e20, `100000000000000000000.0`},
		{1e21, `1e+21`},
		{1e-7, `1e-7`},
		{5e-324, `5e-324`},
		{"a\"b\\c\n\t\x01é", `"a\"b\\c\n\t\u0001é"`},
		{"a<b & c\u2028\u2029", `"a<b & c\u2028\u2029"`},
		{[]any{int64(1), 1.5, "x"}, `[1,1.5,"x"]`},
		{map[string]any{"k": []any{}}, `{"k":[]}`},
		{map[string]any{"b": int64(2), "a": int64(1), "c": nil}, `{"a":1,"b":2,"c":null}`},
	}
	for _, tt := range tests {
		b, err := valuejson.Append(nil, tt.v, "v")
		if err != nil || string(b) != tt.json {
			t.Errorf("Append(%#v) = %s, %v; want %s", tt.v, b, err, tt.json)
			continue
		}
		// Round trip through the decoder, inside an object.
		m, err := valuejson.Decoder{}.DecodeObject([]byte(`{"v":` + tt.json + `}`))
		if err != nil || !reflect.DeepEqual(m["v"], tt.v) {
			t.Errorf("decode(%s) = %#v, %v; want %#v", tt.json, m["v"], err, tt.v)
		}
	}
	// Go's other integer and float types are written as the value model's.
	others := []struct {
		v    any
		json string
	}{
		{map[string]any{"a": uint16(3)}, `{"a":3}`},
		{map[string]any(nil), `{}`},
		{int8(-8), `-8`},
		{uint(7), `7`},
		{uint64(math.MaxInt64), `9223372036854775807`},
		{float32(0.5), `0.5`},
		{float32(0.1), `0.1`},
		{float32(2), `2.0`},
		{[]byte("hi"), `"aGk="`},
		{[]byte{}, `""`},
	}
	for _, tt := range others {
		if b, err := valuejson.Append(nil, tt.v, "v"); err != nil || string(b) != tt.json {
			t.Errorf("Append(%#v) = %s, %v; want %s", tt.v, b, err, tt.json)
		}
	}
}

func TestAppendErrors(t *testing.T) {
	deep := any(int64(1))
	for i := 0; i < sdk.MaxDepth+1; i++ {
		deep = []any{deep}
	}
	tests := []struct {
		v    any
		kind error
		msg  string
	}{
		{math.NaN(), valuejson.ErrNonFinite, "params.x: NaN has no JSON form"},
		{math.Inf(-1), valuejson.ErrNonFinite, "params.x: -Inf has no JSON form"},
		{float32(math.Inf(1)), valuejson.ErrNonFinite, "params.x: +Inf has no JSON form"},
		{uint64(math.MaxUint64), valuejson.ErrOutside, "params.x: 18446744073709551615 does not fit in int64"},
		{"\xff", valuejson.ErrOutside, "params.x: the string is not valid UTF-8"},
		{struct{}{}, valuejson.ErrOutside, "params.x: struct {} is not in the value model"},
		{map[string]any{"\xff": 1}, valuejson.ErrOutside, `params.x: the key "\xff" is not valid UTF-8`},
		{map[string]any{"l": []any{1, func() {}}}, valuejson.ErrOutside, "params.x.l[1]: func() is not in the value model"},
		{deep, valuejson.ErrTooDeep, "nested deeper than 64 levels"},
	}
	for _, tt := range tests {
		_, err := valuejson.Append(nil, tt.v, "params.x")
		var e *valuejson.Error
		if !errors.As(err, &e) || !errors.Is(err, tt.kind) || !errors.Is(err, valuejson.ErrOutside) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Append(%#v) = %v; want a %v error with %q", tt.v, err, tt.kind, tt.msg)
		}
	}
}

// TestAppendAsCheckParams: Append refuses what sdk.CheckParams refuses,
// with the same message.
func TestAppendAsCheckParams(t *testing.T) {
	for _, m := range []map[string]any{
		{"u": uint64(1<<63 + 1)},
		{"when": struct{ T int }{}},
		{"outer": map[string]any{"list": []any{1, struct{}{}}}},
		{"deep": nest(sdk.MaxDepth)},
	} {
		want := sdk.CheckParams(m)
		_, err := valuejson.Append(nil, m, "")
		if want == nil || err == nil || err.Error() != sdk.AsError(want).Message {
			t.Errorf("Append(%v) = %v; sdk.CheckParams says %v", m, err, want)
		}
	}
	ok := map[string]any{"deep": nest(sdk.MaxDepth - 1)}
	if _, err := valuejson.Append(nil, ok, ""); err != nil || sdk.CheckParams(ok) != nil {
		t.Errorf("Append at the depth limit: %v (sdk.CheckParams: %v)", err, sdk.CheckParams(ok))
	}
}

// nest is 1 inside n arrays: its innermost value is at level n+1 below an
// object holding it.
func nest(n int) any {
	v := any(int64(1))
	for range n {
		v = []any{v}
	}
	return v
}

func TestDecodeObject(t *testing.T) {
	good := map[string]any{
		`{}`:                             map[string]any{},
		` { "a" : [ 1 , -2.5e3 ] } `:     map[string]any{"a": []any{int64(1), -2500.0}},
		`{"s":"\u00e9\ud83d\ude00\/"}`:   map[string]any{"s": "é😀/"},
		`{"lone":"\ud800"}`:              map[string]any{"lone": "\uFFFD"},
		`{"z":0,"m":-0,"f":0.0,"e":1E2}`: map[string]any{"z": int64(0), "m": int64(0), "f": 0.0, "e": 100.0},
		`{"n":null,"t":true,"x":false}`:  map[string]any{"n": nil, "t": true, "x": false},
		`{"a":{"b":{"c":1}}}`:            map[string]any{"a": map[string]any{"b": map[string]any{"c": int64(1)}}},
	}
	for in, want := range good {
		got, err := valuejson.Decoder{MaxDepth: 4}.DecodeObject([]byte(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("decode(%s) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	bad := []struct {
		in, msg string
		kind    error
	}{
		{`[]`, "byte 1: want a JSON object", valuejson.ErrSyntax},
		{`{"a":1,"a":2}`, `byte 8: the key "a" is given twice`, valuejson.ErrOutside},
		{`{"a":9223372036854775808}`, "byte 6: a: the integer 9223372036854775808 does not fit in int64", valuejson.ErrOutside},
		{`{"a":[0,1e999]}`, "byte 9: a[1]: 1e999 is out of range for a 64-bit float", valuejson.ErrOutside},
		{`{"a":NaN}`, "NaN and Infinity are not JSON", valuejson.ErrSyntax},
		{`{"a":01}`, "leading zero", valuejson.ErrSyntax},
		{`{"a":1.}`, "without digits after '.'", valuejson.ErrSyntax},
		{`{"a":1e}`, "without digits in its exponent", valuejson.ErrSyntax},
		{`{"a":-}`, "without digits", valuejson.ErrSyntax},
		{`{"a":"\x"}`, `unknown escape`, valuejson.ErrSyntax},
		{`{"a":"\u12"}`, `\u escape`, valuejson.ErrSyntax},
		{"{\"a\":\"\x01\"}", "control character", valuejson.ErrSyntax},
		{"{\"a\":\"\xff\"}", "not valid UTF-8", valuejson.ErrSyntax},
		{"{\"a\":\"\\n\xff\"}", "not valid UTF-8", valuejson.ErrSyntax},
		{`{"a":tru}`, "byte 9: a: invalid character '}': unexpected character in true", valuejson.ErrSyntax},
		{`{"a":[1,]}`, "byte 9: a[1]: invalid character ']': unexpected character where a value should begin", valuejson.ErrSyntax},
		{`{"a":}`, "byte 6: a: invalid character '}'", valuejson.ErrSyntax},
		{`{"a":1} x`, "byte 9: unexpected data after the object", valuejson.ErrSyntax},
		{`{"a":1`, "byte 7: unexpected end of input in an object", io.ErrUnexpectedEOF},
		{`{"a":"x`, "a string does not end", io.ErrUnexpectedEOF},
		{`{"a":nul`, "unexpected end of input in null", io.ErrUnexpectedEOF},
		{`{"a":[`, "unexpected end of input", io.ErrUnexpectedEOF},
		{`{"a":{"b":{"c":{}}}}`, "byte 16: a.b.c: objects and arrays nested deeper than 3 levels", valuejson.ErrTooDeep},
		{`{"a":[[1]]}`, "a[0][0]: objects and arrays nested deeper than 3", valuejson.ErrTooDeep},
		{`{a:1}`, "want a string key", valuejson.ErrSyntax},
		{`{"a" 1}`, "want ':' after a key", valuejson.ErrSyntax},
		{`{"a":1 "b":2}`, "want ',' or '}' in an object", valuejson.ErrSyntax},
		{`{"a":[1 2]}`, "want ',' or ']' in an array", valuejson.ErrSyntax},
	}
	for _, tt := range bad {
		_, err := valuejson.Decoder{MaxDepth: 3}.DecodeObject([]byte(tt.in))
		var e *valuejson.Error
		if !errors.As(err, &e) || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("decode(%s) = %v; want a %v error with %q", tt.in, err, tt.kind, tt.msg)
		}
	}
}

func TestDecode(t *testing.T) {
	// Decode reads one value and says where it ends; what follows is the
	// caller's business.
	v, n, err := valuejson.Decoder{}.Decode([]byte(` [1, 2.0] {"b":2}`))
	if err != nil || n != 9 || !reflect.DeepEqual(v, []any{int64(1), 2.0}) {
		t.Errorf("Decode = %#v, %d, %v; want [1 2.0] and 9", v, n, err)
	}
	if v, _, err := (valuejson.Decoder{}).Decode([]byte(`"s"`)); err != nil || v != "s" {
		t.Errorf(`Decode("s") = %#v, %v`, v, err)
	}
	// Integers outside int64: refused, or read as floats when asked.
	big := []byte(`99999999999999999999`)
	if _, _, err := (valuejson.Decoder{}).Decode(big); !errors.Is(err, valuejson.ErrOutside) {
		t.Errorf("a big integer: %v, want ErrOutside", err)
	}
	if v, _, err := (valuejson.Decoder{BigIntegersAsFloats: true}).Decode(big); err != nil || v != 1e20 {
		t.Errorf("a big integer as a float: %#v, %v", v, err)
	}
	huge := []byte("1" + strings.Repeat("0", 400))
	if _, _, err := (valuejson.Decoder{BigIntegersAsFloats: true}).Decode(huge); !errors.Is(err, valuejson.ErrOutside) || !strings.Contains(err.Error(), "out of range for a 64-bit float") {
		t.Errorf("an integer beyond float64: %v", err)
	}
}

// TestDecodeAsCheckParams: the zero Decoder reads an object exactly as
// deep as sdk.CheckParams allows params to be, and no deeper.
func TestDecodeAsCheckParams(t *testing.T) {
	for _, depth := range []int{sdk.MaxDepth - 1, sdk.MaxDepth} {
		b, err := valuejson.Append(nil, map[string]any{"d": nest(depth - 1)}, "")
		if err != nil {
			t.Fatal(err)
		}
		deeper := `{"d":[` + string(b[5:len(b)-1]) + `]}` // one level more
		for _, in := range []string{string(b), deeper} {
			m, err := valuejson.Decoder{}.DecodeObject([]byte(in))
			var check error
			if err == nil {
				check = sdk.CheckParams(m)
			}
			wantOK := strings.Count(in, "[") <= sdk.MaxDepth-1
			if (err == nil) != wantOK || check != nil {
				t.Errorf("%d levels: decode %v, sdk.CheckParams %v; want ok=%v", strings.Count(in, "[")+1, err, check, wantOK)
			}
		}
	}
}

func ExampleAppend() {
	b, _ := valuejson.Append(nil, map[string]any{"n": int64(2), "f": 2.0, "b": []byte("hi")}, "")
	os.Stdout.Write(append(b, '\n'))
	v, _, _ := valuejson.Decoder{}.Decode(b)
	m := v.(map[string]any)
	fmt.Printf("%T %T %T\n", m["n"], m["f"], m["b"])
	// Output:
	// {"b":"aGk=","f":2.0,"n":2}
	// int64 float64 string
}

// FuzzDecode: no input makes the decoder panic or hang; every error is an
// *Error of a known kind; and what it accepts is in the value model,
// written back by Append without error, and read back unchanged. The seeds
// are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range []valuejson.Decoder{{}, {BigIntegersAsFloats: true}} {
			v, n, err := d.Decode(data)
			if err != nil {
				var e *valuejson.Error
				if !errors.As(err, &e) || e.Offset < 1 || e.Offset > len(data)+1 ||
					!errors.Is(err, valuejson.ErrSyntax) && !errors.Is(err, valuejson.ErrOutside) {
					t.Fatalf("decode: an error that is not an *Error of a known kind, at a byte of the input: %#v", err)
				}
				continue
			}
			if n < 1 || n > len(data) {
				t.Fatalf("decode read %d of %d bytes", n, len(data))
			}
			if err := sdk.CheckParams(map[string]any{"v": v}); err != nil {
				t.Fatalf("decoded a value outside the value model: %v", err)
			}
			b, err := valuejson.Append(nil, v, "")
			if err != nil {
				t.Fatalf("cannot write back %#v: %v", v, err)
			}
			again, _, err := valuejson.Decoder{}.Decode(b)
			if err != nil || !reflect.DeepEqual(again, v) {
				t.Fatalf("round trip through %s: %#v, %v; want %#v", b, again, err, v)
			}
		}
	})
}

// FuzzAppendString: every string is written as JSON that reads back as the
// same text, each byte of invalid UTF-8 replaced by U+FFFD. The seeds are
// in testdata/fuzz/FuzzAppendString.
func FuzzAppendString(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		b := valuejson.AppendString(nil, s)
		v, n, err := valuejson.Decoder{}.Decode(b)
		if want := string([]rune(s)); err != nil || n != len(b) || v != want {
			t.Fatalf("AppendString(%q) = %s, which reads back as %q, %v; want %q", s, b, v, err, want)
		}
	})
}
