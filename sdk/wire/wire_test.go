package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// value encodes v in enc, for a Raw.
func value(t testing.TB, enc Encoding, v map[string]any) Raw {
	t.Helper()
	if v == nil {
		return nil
	}
	var b []byte
	var err error
	if enc == JSON {
		b, err = json.Marshal(v)
	} else {
		b, err = cbor.Marshal(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeValue decodes a Raw, to compare values rather than bytes.
func decodeValue(t testing.TB, enc Encoding, r Raw) map[string]any {
	t.Helper()
	if r == nil {
		return nil
	}
	var m map[string]any
	var err error
	if enc == JSON {
		d := json.NewDecoder(bytes.NewReader(r))
		d.UseNumber()
		err = d.Decode(&m)
		for k, v := range m {
			if n, ok := v.(json.Number); ok {
				m[k], _ = n.Int64()
			}
		}
	} else {
		m, err = cbor.UnmarshalMap(r)
	}
	if err != nil {
		t.Fatalf("%s value %q: %v", enc, r, err)
	}
	return m
}

// roundTrip appends m, reads it back through a Reader and decodes it.
func roundTrip(t *testing.T, enc Encoding, fromChild bool, m *Message) Message {
	t.Helper()
	b, err := Append(nil, enc, m)
	if err != nil {
		t.Fatalf("%s: Append(%+v): %v", enc, m, err)
	}
	r := NewReader(bufio.NewReader(bytes.NewReader(b)), enc, "test")
	body, err := r.Next()
	if err != nil {
		t.Fatalf("%s: Next: %v", enc, err)
	}
	d := Decoder{Encoding: enc, FromChild: fromChild}
	got, err := d.Decode(body)
	if err != nil {
		t.Fatalf("%s: Decode(%q): %v", enc, body, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("%s: after the message: %v, want io.EOF", enc, err)
	}
	return got
}

// TestRoundTrip: every kind, in both encodings, reads back as written.
func TestRoundTrip(t *testing.T) {
	params := map[string]any{"a": int64(1), "s": "é\n\"x\""}
	for _, enc := range []Encoding{CBOR, JSON} {
		tests := []struct {
			name      string
			fromChild bool
			m         Message
		}{
			{"call", false, Message{Kind: Call, ID: 7, Method: "add", Params: value(t, enc, params), Timeout: 1500 * time.Nanosecond, TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
			{"call without params", false, Message{Kind: Call, ID: 8, Method: "add"}},
			{"child's call", true, Message{Kind: Call, ID: 1, Parent: 7, HasParent: true, Target: "geo", Method: "find", Params: value(t, enc, params)}},
			{"cancel", false, Message{Kind: Cancel, ID: 7}},
			{"ping", false, Message{Kind: Ping, ID: 9}},
			{"init", false, Message{Kind: Init, ID: 1, Config: value(t, enc, map[string]any{"who": "me"})}},
			{"init without config", false, Message{Kind: Init, ID: 1}},
			{"check", false, Message{Kind: Check, ID: 2}},
			{"close", false, Message{Kind: Close, ID: 3}},
			{"result", true, Message{Kind: Result, ID: 7, Result: value(t, enc, map[string]any{"sum": int64(3)})}},
			{"no result", true, Message{Kind: Result, ID: 9}},
			{"error", true, Message{Kind: Error, ID: 7, Err: &ErrorBody{Code: "bad_params", Message: "a → b\t\"c\""}}},
		}
		for _, tt := range tests {
			got := roundTrip(t, enc, tt.fromChild, &tt.m)
			want := tt.m
			want.HasID = true
			if want.Timeout > 0 {
				want.Timeout = 2 * time.Microsecond // 1.5 µs, rounded up
			}
			if want.Kind == Call && want.Params == nil {
				want.Params = value(t, enc, map[string]any{})
			}
			if !reflect.DeepEqual(decodeValue(t, enc, got.Params), decodeValue(t, enc, want.Params)) ||
				!reflect.DeepEqual(decodeValue(t, enc, got.Config), decodeValue(t, enc, want.Config)) ||
				!reflect.DeepEqual(decodeValue(t, enc, got.Result), decodeValue(t, enc, want.Result)) {
				t.Errorf("%s %s: values %q %q %q, want %q %q %q", enc, tt.name, got.Params, got.Config, got.Result, want.Params, want.Config, want.Result)
			}
			got.Params, got.Config, got.Result = nil, nil, nil
			want.Params, want.Config, want.Result = nil, nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s:\n got %+v\nwant %+v", enc, tt.name, got, want)
			}
		}
	}
}

// TestStrings: text that is not valid UTF-8 is sent with U+FFFD, and JSON
// escapes what it must.
func TestStrings(t *testing.T) {
	for in, want := range map[string]string{
		"plain":             `"plain"`,
		"q\"b\\":            `"q\"b\\"`,
		"\n\r\t\x01\x1f":    `"\n\r\t\u0001\u001f"`,
		"bad \xff byte":     `"bad ` + "\uFFFD" + ` byte"`,
		"é → \u2028\u2029!": `"é → \u2028\u2029!"`,
	} {
		got := string(AppendJSONString(nil, in))
		if got != want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != strings.ToValidUTF8(in, "\uFFFD") {
			t.Errorf("%s reads back as %q, %v", got, back, err)
		}
	}
	m := Message{Kind: Error, ID: 1, Err: &ErrorBody{Code: "x\xff", Message: "m\xfe"}}
	for _, enc := range []Encoding{CBOR, JSON} {
		got := roundTrip(t, enc, true, &m)
		if got.Err.Code != "x\uFFFD" || got.Err.Message != "m\uFFFD" {
			t.Errorf("%s: %+v", enc, got.Err)
		}
	}
}

func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMalformed: what breaks the protocol is a *ProtocolError that says
// what is wrong, in both encodings alike.
func TestMalformed(t *testing.T) {
	tests := []struct {
		name      string
		fromChild bool
		cbor      any // a value to marshal, or []byte as it is
		json      string
		want      string
	}{
		{"no type", false, map[string]any{"id": int64(1)}, `{"id":1}`, `without "t"`},
		{"type not a string", false, map[string]any{"t": int64(1), "id": int64(1)}, `{"t":1,"id":1}`, `"t"`},
		{"no id", false, map[string]any{"t": "ping"}, `{"t":"ping"}`, `a "ping" message without "id"`},
		{"float id", false, map[string]any{"t": "ping", "id": 1.5}, `{"t":"ping","id":1.5}`, `"id" is float, not an integer`},
		{"string id", false, map[string]any{"t": "ping", "id": "1"}, `{"t":"ping","id":"1"}`, `"id" is string, not an integer`},
		{"error without error", true, map[string]any{"t": "error", "id": int64(1)}, `{"t":"error","id":1}`, `without "error"`},
		{"error not a map", true, map[string]any{"t": "error", "id": int64(1), "error": "no"}, `{"t":"error","id":1,"error":"no"}`, `"error" is string, not a map`},
		{"result not a map", true, map[string]any{"t": "result", "id": int64(1), "result": []any{}}, `{"t":"result","id":1,"result":[]}`, `"result" is array, not a map`},
		{"call without method", false, map[string]any{"t": "call", "id": int64(1)}, `{"t":"call","id":1}`, `no "method"`},
		{"method not a string", false, map[string]any{"t": "call", "id": int64(1), "method": int64(3)}, `{"t":"call","id":1,"method":3}`, `"method" is integer, not a string`},
		{"params not a map", false, map[string]any{"t": "call", "id": int64(1), "method": "m", "params": "x"}, `{"t":"call","id":1,"method":"m","params":"x"}`, `"params" is string, not a map`},
		{"child's call without parent", true, map[string]any{"t": "call", "id": int64(1), "target": "g", "method": "m"}, `{"t":"call","id":1,"target":"g","method":"m"}`, `no integer "parent"`},
		{"child's call without target", true, map[string]any{"t": "call", "id": int64(1), "parent": int64(1), "method": "m"}, `{"t":"call","id":1,"parent":1,"method":"m"}`, `no "target"`},
		{"child's id 0", true, map[string]any{"t": "cancel", "id": int64(0)}, `{"t":"cancel","id":0}`, `from 1 to 2^53-1`},
		{"child's id too big", true, map[string]any{"t": "cancel", "id": int64(MaxID + 1)}, `{"t":"cancel","id":9007199254740992}`, `from 1 to 2^53-1`},
		{"float timeout", false, map[string]any{"t": "call", "id": int64(1), "method": "m", "timeout_us": 1.5}, `{"t":"call","id":1,"method":"m","timeout_us":1.5}`, `"timeout_us" is float`},
		{"not a map", false, []any{"t"}, `["t"]`, "protocol error"},
		{"trailing bytes", false, []byte{0xa2, 0x61, 't', 0x64, 'p', 'i', 'n', 'g', 0x62, 'i', 'd', 0x01, 0x00}, `{"t":"ping","id":1} 0`, "protocol error"},
		{"not CBOR or JSON", false, []byte{0xff}, `oops`, "protocol error"},
		{"integer outside int64", false, map[string]any{"t": "ping", "id": 1e19}, `{"t":"ping","id":10000000000000000000}`, `"id" is`},
	}
	for _, tt := range tests {
		for _, enc := range []Encoding{CBOR, JSON} {
			body := []byte(tt.json)
			if enc == CBOR {
				var ok bool
				if body, ok = tt.cbor.([]byte); !ok {
					body = mustCBOR(t, tt.cbor)
				}
			}
			d := Decoder{Encoding: enc, FromChild: tt.fromChild}
			m, err := d.Decode(body)
			var pe *ProtocolError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s %s: %+v, %v; want a protocol error with %q", enc, tt.name, m, err, tt.want)
			}
		}
	}
	// JSON only: a key of the protocol given twice, a line nested too deep.
	d := Decoder{Encoding: JSON}
	if _, err := d.Decode([]byte(`{"t":"ping","id":1,"id":2}`)); err == nil || !strings.Contains(err.Error(), `"id" is given twice`) {
		t.Errorf("a repeated key: %v", err)
	}
	deep := `{"t":"call","id":1,"method":"m","params":` + strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth) + "}"
	if _, err := d.Decode([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("a line nested too deep: %v", err)
	}
}

// TestLenient: unknown keys are skipped, a key of another kind with a value
// of any type is one of them, and an unknown type is the receiver's to
// judge.
func TestLenient(t *testing.T) {
	for _, enc := range []Encoding{CBOR, JSON} {
		body := []byte(`{"t":"result","id":4,"method":5,"params":"x","later":[1,{"x":null}]}`)
		if enc == CBOR {
			body = mustCBOR(t, map[string]any{"t": "result", "id": int64(4), "method": int64(5), "params": "x", "later": []any{int64(1), map[string]any{"x": nil}}})
		}
		d := Decoder{Encoding: enc, FromChild: true}
		m, err := d.Decode(body)
		if err != nil || m.Kind != Result || m.ID != 4 || m.Result != nil {
			t.Errorf("%s: %+v, %v", enc, m, err)
		}
		body = []byte(`{"t":"log","line":"x"}`)
		if enc == CBOR {
			body = mustCBOR(t, map[string]any{"t": "log", "line": "x"})
		}
		if m, err = d.Decode(body); err != nil || m.Kind != Unknown || m.Type != "log" || m.HasID {
			t.Errorf("%s: unknown type: %+v, %v", enc, m, err)
		}
		body = []byte(`{"t":"result","id":4,"result":null}`)
		if enc == CBOR {
			body = mustCBOR(t, map[string]any{"t": "result", "id": int64(4), "result": nil})
		}
		if m, err = d.Decode(body); err != nil || m.Result != nil {
			t.Errorf("%s: a null result: %+v, %v", enc, m, err)
		}
	}
	// JSON as other encoders write it: white space anywhere, escapes in keys
	// and strings.
	dj := Decoder{Encoding: JSON, FromChild: true}
	for _, line := range []string{
		" { \"t\" : \"error\" ,\n\"id\":\t4, \"error\" : { \"code\" : \"bad_params\" , \"message\" : \"a \\\"q\\\" \\u00e9\" } } ",
		`{"\u0074":"err\u006fr","id":4,"x":{"y":[1,"}",{"z":"]"}]},"error":{"message":"a \"q\" é","code":"bad_params"}}`,
	} {
		m, err := dj.Decode([]byte(line))
		if err != nil || m.Kind != Error || m.ID != 4 || m.Err == nil || *m.Err != (ErrorBody{Code: "bad_params", Message: `a "q" é`}) {
			t.Errorf("%s: %+v (%+v), %v", line, m, m.Err, err)
		}
	}
	// Indefinite lengths and the self-describe tag, as other languages'
	// encoders may write them.
	body := []byte{0xd9, 0xd9, 0xf7, 0xbf, 0x61, 't', 0x64, 'p', 'i', 'n', 'g', 0x62, 'i', 'd', 0x05, 0xff}
	d := Decoder{}
	if m, err := d.Decode(body); err != nil || m.Kind != Ping || m.ID != 5 {
		t.Errorf("indefinite map: %+v, %v", m, err)
	}
	// Names interns method names.
	d.Names = map[string]string{"add": "add"}
	if m, err := d.Decode(mustCBOR(t, map[string]any{"t": "call", "id": int64(1), "method": "add"})); err != nil || m.Method != "add" {
		t.Errorf("interned method: %+v, %v", m, err)
	}
}

// TestLimits: Append refuses a message over MaxFrame; the Reader refuses a
// frame header or a line over it.
func TestLimits(t *testing.T) {
	big := make(Raw, MaxFrame)
	for _, enc := range []Encoding{CBOR, JSON} {
		_, err := Append(nil, enc, &Message{Kind: Result, ID: 1, Result: big})
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Size <= MaxFrame || !strings.Contains(err.Error(), "over the process protocol's limit") {
			t.Errorf("%s: Append of %d bytes: %v", enc, len(big), err)
		}
	}
	for name, in := range map[string][]byte{
		"empty frame": {0, 0, 0, 0},
		"huge frame":  binary.BigEndian.AppendUint32(nil, MaxFrame+1),
	} {
		_, err := NewReader(bufio.NewReader(bytes.NewReader(in)), CBOR, "stdin").Next()
		if err == nil || !strings.Contains(err.Error(), "a frame header announces") {
			t.Errorf("%s: %v", name, err)
		}
	}
	long := bytes.Repeat([]byte("x"), MaxFrame+2)
	_, err := NewReader(bufio.NewReader(bytes.NewReader(long)), JSON, "stdin").Next()
	if err == nil || !strings.Contains(err.Error(), "a line longer than") {
		t.Errorf("a long line: %v", err)
	}
	line := append(bytes.Repeat([]byte("y"), 100), '\n')
	if _, err := ReadLine(bufio.NewReaderSize(bytes.NewReader(line), 16), 50, "stdout"); err == nil || !strings.Contains(err.Error(), "longer than 50") {
		t.Errorf("ReadLine over its limit: %v", err)
	}
	if got, err := ReadLine(bufio.NewReaderSize(bytes.NewReader(line), 16), 200, "stdout"); err != nil || len(got) != 100 {
		t.Errorf("ReadLine = %d bytes, %v", len(got), err)
	}
}

// TestReader: messages split anywhere, with timeouts between the pieces,
// read whole; a stream that ends in the middle of one says so.
func TestReader(t *testing.T) {
	bodyC := mustCBOR(t, map[string]any{"t": "result", "id": int64(1), "result": map[string]any{"s": strings.Repeat("x", 100<<10)}})
	lineJ := `{"t":"result","id":1,"result":{"s":"` + strings.Repeat("y", 100<<10) + `"}}`
	for _, enc := range []Encoding{CBOR, JSON} {
		in := append(frame(bodyC), frame(bodyC)...)
		if enc == JSON {
			in = []byte(lineJ + "\n" + lineJ + "\n")
		}
		r := NewReader(bufio.NewReaderSize(&trickle{data: in}, 16), enc, "stdout")
		d := Decoder{Encoding: enc, FromChild: true}
		for n := 0; n < 2; {
			body, err := r.Next()
			if errors.Is(err, errTrickle) {
				continue
			}
			if err != nil {
				t.Fatalf("%s: message %d: %v", enc, n, err)
			}
			if m, err := d.Decode(body); err != nil || m.ID != 1 || len(m.Result) < 100<<10 {
				t.Fatalf("%s: message %d: %v", enc, n, err)
			}
			n++
		}
		_, err := r.Next()
		if errors.Is(err, errTrickle) {
			_, err = r.Next()
		}
		if err != io.EOF {
			t.Errorf("%s: at the end: %v", enc, err)
		}
	}
	for name, tc := range map[string]struct {
		enc  Encoding
		in   []byte
		want string
	}{
		"cut header": {CBOR, []byte{0, 0}, "stdout ended in the middle of a frame header"},
		"cut body":   {CBOR, []byte{0, 0, 0, 9, 0xa1}, "stdout ended in the middle of a frame of 9 bytes"},
		"cut line":   {JSON, []byte(`{"t":"result"`), "stdout ended in the middle of a line"},
		"text":       {CBOR, []byte("oops! this is not a frame"), "does the module print to stdout?"},
	} {
		_, err := NewReader(bufio.NewReader(bytes.NewReader(tc.in)), tc.enc, "stdout").Next()
		var pe *ProtocolError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want a protocol error with %q", name, err, tc.want)
		}
	}
}

var errTrickle = errors.New("trickle: a timeout")

// trickle returns at most 7 bytes a read, and a timeout every other read.
type trickle struct {
	data []byte
	n    int
}

func (r *trickle) Read(p []byte) (int, error) {
	r.n++
	if r.n%2 == 0 {
		return 0, errTrickle
	}
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestHello(t *testing.T) {
	line, err := AppendHello(nil, Hello{Version: 2, Encoding: CBOR, Manifest: json.RawMessage(`{"name":"x"}`)})
	if err != nil || !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("AppendHello = %q, %v", line, err)
	}
	h, err := ParseHello(line[:len(line)-1])
	if err != nil || h.Hotmod != "process" || h.Version != 2 || h.Encoding != CBOR || string(h.Manifest) != `{"name":"x"}` {
		t.Errorf("ParseHello = %+v, %v", h, err)
	}
	for _, bad := range []string{`hello there`, `{"hotmod":"wasm"}`, `[]`} {
		if _, err := ParseHello([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not the process protocol's hello") {
			t.Errorf("ParseHello(%s) = %v", bad, err)
		}
	}
	for offer, want := range map[string][2]int{"": {1, 1}, "1": {1, 1}, "1-2": {1, 2}, " 2 - 5 ": {2, 5}, "0-1": {}, "3-1": {}, "a": {}, "1-": {}} {
		lo, hi, err := ParseVersions(offer)
		if want == [2]int{} && err == nil || want != [2]int{} && (err != nil || lo != want[0] || hi != want[1]) {
			t.Errorf("ParseVersions(%q) = %d, %d, %v; want %v", offer, lo, hi, err, want)
		}
	}
	if got := FormatVersions(MinVersion, MaxVersion); got != "1-2" {
		t.Errorf("FormatVersions = %q", got)
	}
	if got := ParseEncodings(" json, cbor ,"); !reflect.DeepEqual(got, []Encoding{JSON, CBOR}) {
		t.Errorf("ParseEncodings = %v", got)
	}
	if got := ParseEncodings(""); !reflect.DeepEqual(got, []Encoding{CBOR}) {
		t.Errorf("ParseEncodings(\"\") = %v", got)
	}
}

// FuzzDecode: no input makes either decoder panic, and what one accepts
// has what its kind needs and appends again to a message that decodes the
// same.
func FuzzDecode(f *testing.F) {
	for _, m := range []Message{
		{Kind: Call, ID: 1, Method: "add", Params: Raw{0xa1, 0x61, 'a', 0x01}, Timeout: time.Millisecond, TraceParent: "00-x"},
		{Kind: Call, ID: 1, Parent: 4, HasParent: true, Target: "geo", Method: "find"},
		{Kind: Result, ID: 7, Result: Raw{0xa1, 0x61, 's', 0x03}},
		{Kind: Error, ID: 2, Err: &ErrorBody{Code: "bad_params", Message: "no"}},
		{Kind: Init, ID: 3}, {Kind: Cancel, ID: 1}, {Kind: Ping, ID: 9},
	} {
		b, _ := Append(nil, CBOR, &m)
		f.Add(b[4:], false)
	}
	for _, s := range []string{
		`{"t":"call","id":1,"parent":4,"target":"geo","method":"find","params":{"q":"x"},"timeout_us":9}`,
		`{"t":"error","id":2,"error":{"code":"bad_params","message":"no"}}`,
		`{"t":"result","id":7,"result":{"deep":[[[{"a":-0.0e-5}]]]}}`,
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		enc := CBOR
		if isJSON {
			enc = JSON
		}
		for _, fromChild := range []bool{false, true} {
			d := Decoder{Encoding: enc, FromChild: fromChild}
			m, err := d.Decode(data)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("an error that is not a protocol error: %v", err)
				}
				continue
			}
			if m.Kind == Unknown {
				continue
			}
			if !m.HasID || m.Kind == Error && m.Err == nil || m.Kind == Call && m.Method == "" {
				t.Fatalf("accepted without what its kind needs: %+v", m)
			}
			b, err := Append(nil, enc, &m)
			if err != nil {
				t.Fatalf("Append(%+v): %v", m, err)
			}
			body := b[4:]
			if enc == JSON {
				body = b[:len(b)-1]
			}
			again, err := d.Decode(body)
			if err != nil || again.Kind != m.Kind || again.ID != m.ID || again.Method != m.Method {
				t.Fatalf("%+v appends to %q, which decodes to %+v, %v", m, b, again, err)
			}
		}
	})
}
