package process

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

// The value model's JSON itself is tested in internal/valuejson; these
// check what the text mode adds: bad_params errors that name the path, and
// the protocol's strictness about integers.
func TestJSONParams(t *testing.T) {
	b, err := appendJSON(nil, map[string]any{"b": 2.0, "a": int64(1), "c": []byte("hi")}, "params", 0)
	if err != nil || string(b) != `{"a":1,"b":2.0,"c":"aGk="}` {
		t.Errorf("appendJSON = %s, %v", b, err)
	}
	for _, bad := range []any{math.NaN(), math.Inf(-1), uint64(math.MaxUint64), "\xff", struct{}{}, map[string]any{"\xff": 1}} {
		if _, err := appendJSON(nil, bad, "params.x", 0); sdk.CodeOf(err) != sdk.CodeBadParams || !strings.Contains(err.Error(), "params.x") {
			t.Errorf("appendJSON(%#v) = %v, want a bad_params error naming the path", bad, err)
		}
	}
	if _, err := appendJSON(nil, math.Inf(1), "params.x", 0); err == nil || !strings.Contains(err.Error(), "params.x: +Inf cannot be sent to a module that speaks JSON") {
		t.Errorf("appendJSON(+Inf) = %v", err)
	}
	deep := any(int64(1))
	for i := 0; i < sdk.MaxDepth+1; i++ {
		deep = []any{deep}
	}
	if _, err := appendJSON(nil, deep, "v", 0); sdk.CodeOf(err) != sdk.CodeBadParams {
		t.Errorf("appendJSON of a value nested too deep = %v, want bad_params", err)
	}
	for in, want := range map[string]string{
		`[]`:                        "want a JSON object",
		`{"a":9223372036854775808}`: "does not fit in int64",
		`{"a":1,"a":2}`:             `the key "a" is given twice`,
		`{"a":{"b":{"c":{}}}}`:      "nested deeper than 3",
	} {
		if _, err := parseJSONObject([]byte(in), 3); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse(%s) = %v; want an error with %q", in, err, want)
		}
	}
	if m, err := parseJSONObject([]byte(`{"a":{"b":1}}`), 3); err != nil || m["a"].(map[string]any)["b"] != int64(1) {
		t.Errorf("parse at the depth limit = %v, %v", m, err)
	}
}

func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// messageCase is one message in both encodings, and what reading it gives:
// the message, or a protocol error containing error.
type messageCase struct {
	name  string
	cbor  []byte // a frame body
	json  string // a line
	want  message
	error string
}

// read reads the case's message in enc with a codec of the version.
func (tc messageCase) read(enc string, version int) (message, error) {
	in := frame(tc.cbor)
	if enc == encJSON {
		in = []byte(tc.json + "\n")
	}
	return codecFor(enc, version, bufio.NewReader(bytes.NewReader(in))).readMessage()
}

func (tc messageCase) wantProtocolError(t *testing.T, enc string, err error) {
	t.Helper()
	var pe *protocolError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.error) {
		t.Errorf("%s: %v; want a protocol error with %q", enc, err, tc.error)
	}
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReplies(t *testing.T) {
	tests := []messageCase{
		{"result", mustCBOR(t, map[string]any{"t": "result", "id": int64(7), "result": map[string]any{"sum": int64(3)}}),
			`{"t":"result","id":7,"result":{"sum":3}}`,
			message{id: 7, result: map[string]any{"sum": int64(3)}}, ""},
		{"no result", mustCBOR(t, map[string]any{"t": "result", "id": int64(1)}), `{"t":"result","id":1}`, message{id: 1}, ""},
		{"null result", mustCBOR(t, map[string]any{"t": "result", "id": int64(1), "result": nil}), `{"t":"result","id":1,"result":null}`, message{id: 1}, ""},
		{"error", mustCBOR(t, map[string]any{"t": "error", "id": int64(2), "error": map[string]any{"code": "bad_params", "message": "no"}, "extra": int64(1)}),
			`{"t":"error","id":2,"error":{"code":"bad_params","message":"no"},"extra":1}`,
			message{id: 2, err: &sdk.Error{Code: sdk.CodeBadParams, Message: "no"}}, ""},
		{"unknown code", mustCBOR(t, map[string]any{"t": "error", "id": int64(2), "error": map[string]any{"code": "oops", "message": "no"}}),
			`{"t":"error","id":2,"error":{"code":"oops","message":"no"}}`,
			message{id: 2, err: &sdk.Error{Code: sdk.CodeModule, Message: "oops: no"}}, ""},
		{"no code", mustCBOR(t, map[string]any{"t": "error", "id": int64(2), "error": map[string]any{"message": "no"}}),
			`{"t":"error","id":2,"error":{"message":"no"}}`,
			message{id: 2, err: &sdk.Error{Code: sdk.CodeModule, Message: "no"}}, ""},
		{"unknown type", mustCBOR(t, map[string]any{"t": "log", "id": int64(1)}), `{"t":"log","id":1}`, message{}, "unknown type"},
		{"no type", mustCBOR(t, map[string]any{"id": int64(1)}), `{"id":1}`, message{}, `without "t"`},
		{"no id", mustCBOR(t, map[string]any{"t": "result"}), `{"t":"result"}`, message{}, `without "id"`},
		{"float id", mustCBOR(t, map[string]any{"t": "result", "id": 1.0}), `{"t":"result","id":1.0}`, message{}, "integer"},
		{"error without error", mustCBOR(t, map[string]any{"t": "error", "id": int64(1)}), `{"t":"error","id":1}`, message{}, `without "error"`},
		{"result not a map", mustCBOR(t, map[string]any{"t": "result", "id": int64(1), "result": []any{}}), `{"t":"result","id":1,"result":[]}`, message{}, "not a"},
		{"not a map", mustCBOR(t, []any{"t"}), `["t"]`, message{}, "protocol error"},
		{"trailing", append(mustCBOR(t, map[string]any{"t": "result", "id": int64(1)}), 0), `{"t":"result","id":1} 0`, message{}, "protocol error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, enc := range []string{encCBOR, encJSON} {
				rep, err := tt.read(enc, maxVersion)
				if tt.error != "" {
					tt.wantProtocolError(t, enc, err)
					continue
				}
				if err != nil || !reflect.DeepEqual(rep, tt.want) {
					t.Errorf("%s: %+v, %v; want %+v", enc, rep, err, tt.want)
				}
			}
		})
	}
}

// TestFraming: replies split anywhere, and broken frames and lines.
func TestFraming(t *testing.T) {
	body, _ := cbor.Marshal(map[string]any{"t": "result", "id": int64(1), "result": map[string]any{"s": strings.Repeat("x", 100<<10)}})
	stream := append(frame(body), frame(body)...)
	line := `{"t":"result","id":1,"result":{"s":"` + strings.Repeat("y", 100<<10) + `"}}` + "\n"
	for _, enc := range []string{encCBOR, encJSON} {
		in := stream
		if enc == encJSON {
			in = []byte(line + line)
		}
		// A reader that hands out a few bytes at a time, and times out
		// between them: reading resumes where it stopped.
		r := bufio.NewReaderSize(&trickle{data: in}, 16)
		c := codecFor(enc, maxVersion, r)
		for n := 0; n < 2; {
			rep, err := c.readMessage()
			if errors.Is(err, errTrickle) {
				continue
			}
			if err != nil || rep.id != 1 || len(rep.result["s"].(string)) != 100<<10 {
				t.Fatalf("%s: reply %d: %v", enc, n, err)
			}
			n++
		}
		_, err := c.readMessage()
		if errors.Is(err, errTrickle) {
			_, err = c.readMessage()
		}
		if err != io.EOF {
			t.Errorf("%s: at the end: %v", enc, err)
		}
	}
	broken := map[string][]byte{
		"empty frame":     {0, 0, 0, 0},
		"huge frame":      {0x10, 0, 0, 0},
		"cut header":      {0, 0},
		"cut body":        {0, 0, 0, 9, 0xa1},
		"garbage":         []byte("oops! this is not a frame"),
		"unfinished line": []byte(`{"t":"result"`),
	}
	for name, in := range broken {
		enc := encCBOR
		if name == "unfinished line" {
			enc = encJSON
		}
		_, err := codecFor(enc, maxVersion, bufio.NewReader(bytes.NewReader(in))).readMessage()
		var pe *protocolError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a protocol error", name, err)
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

func TestRequests(t *testing.T) {
	req := request{kind: kindCall, id: 9, method: "add", params: map[string]any{"a": int64(1), "b": 2.0, "c": []byte{1}}, timeout: 1500 * time.Nanosecond}
	b, err := codecFor(encCBOR, maxVersion, nil).appendRequest(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	if int(binary.BigEndian.Uint32(b)) != len(b)-4 {
		t.Fatalf("frame length %d for %d bytes", binary.BigEndian.Uint32(b), len(b)-4)
	}
	m, err := cbor.UnmarshalMap(b[4:])
	want := map[string]any{"t": "call", "id": int64(9), "method": "add", "params": req.params, "timeout_us": int64(2)}
	if err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("cbor request = %#v, %v; want %#v", m, err, want)
	}
	b, err = codecFor(encJSON, maxVersion, nil).appendRequest(nil, req)
	if err != nil || b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("json request %q, %v", b, err)
	}
	m, err = parseJSONObject(b[:len(b)-1], 10)
	want["params"] = map[string]any{"a": int64(1), "b": 2.0, "c": "AQ=="}
	if err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("json request = %#v, %v; want %#v", m, err, want)
	}
	for _, enc := range []string{encCBOR, encJSON} {
		b, err := codecFor(enc, maxVersion, nil).appendRequest(nil, request{kind: kindInit, id: 1})
		if err != nil || !bytes.Contains(b, []byte("config")) {
			t.Errorf("%s init without config: %q, %v", enc, b, err)
		}
		_, err = codecFor(enc, maxVersion, nil).appendRequest(nil, request{kind: kindCall, id: 1, method: "m", params: map[string]any{"f": func() {}}})
		if sdk.CodeOf(err) != sdk.CodeBadParams || !strings.Contains(err.Error(), "params.f: func()") {
			t.Errorf("%s unencodable params: %v", enc, err)
		}
	}
}

// FuzzCBORReply: no input makes the reply decoder panic or hang, and what
// it accepts is a reply a caller can use.
func FuzzCBORReply(f *testing.F) {
	for _, v := range []any{
		map[string]any{"t": "result", "id": int64(7), "result": map[string]any{"sum": int64(3), "l": []any{1.5, nil, []byte{1}}}},
		map[string]any{"t": "error", "id": int64(2), "error": map[string]any{"code": "bad_params", "message": "no"}},
		map[string]any{"t": "result", "id": int64(1), "x": map[string]any{"y": []any{}}},
		map[string]any{"t": "call", "id": int64(1), "parent": int64(4), "target": "geo", "method": "find", "params": map[string]any{"q": "x"}, "timeout_us": int64(9)},
		map[string]any{"t": "cancel", "id": int64(1)},
	} {
		b, _ := cbor.Marshal(v)
		f.Add(frame(b))
	}
	f.Add([]byte{0, 0, 0, 3, 0xbf, 0xff, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReplies(t, encCBOR, data)
	})
}

// FuzzJSONReply is FuzzCBORReply for the text mode.
func FuzzJSONReply(f *testing.F) {
	for _, s := range []string{
		`{"t":"result","id":7,"result":{"sum":3,"l":[1.5,null,"\u00e9"]}}`,
		`{"t":"error","id":2,"error":{"code":"bad_params","message":"no"}}`,
		`{"t":"result","id":1,"result":{"deep":[[[{"a":-0.0e-5}]]]}}`,
		`{"t":"call","id":1,"parent":4,"target":"geo","method":"find","params":{"q":"x"},"timeout_us":9}`,
		`{"t":"cancel","id":1}`,
	} {
		f.Add([]byte(s + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReplies(t, encJSON, data)
	})
}

func checkReplies(t *testing.T, enc string, data []byte) {
	c := codecFor(enc, maxVersion, bufio.NewReader(bytes.NewReader(data)))
	for i := 0; i < 100; i++ {
		rep, err := c.readMessage()
		if err != nil {
			var pe *protocolError
			if err != io.EOF && !errors.As(err, &pe) {
				t.Fatalf("an error that is neither the end nor a protocol error: %v", err)
			}
			return
		}
		if rep.err != nil && rep.result != nil {
			t.Fatalf("a reply with both a result and an error: %+v", rep)
		}
		if rep.result != nil {
			if err := sdk.CheckParams(rep.result); err != nil {
				t.Fatalf("a result outside the value model: %v", err)
			}
		}
		if cc := rep.call; cc != nil {
			if rep.id <= 0 || rep.result != nil || rep.err != nil {
				t.Fatalf("a child's call with id %d and a result or error: %+v", rep.id, rep)
			}
			if cc.kind == kindCall && (cc.target == "" || cc.method == "" || cc.params == nil || sdk.CheckParams(cc.params) != nil) {
				t.Fatalf("a child's call without what it needs: %+v", cc)
			}
		}
	}
}

// TestChildCalls: the messages of a child's calls to other modules
// (version 2), in both encodings.
func TestChildCalls(t *testing.T) {
	tests := []messageCase{
		{"call", mustCBOR(t, map[string]any{"t": "call", "id": int64(5), "parent": int64(3), "target": "geo", "method": "find",
			"params": map[string]any{"q": "x", "n": int64(2)}, "timeout_us": int64(1500), "extra": true}),
			`{"t":"call","id":5,"parent":3,"target":"geo","method":"find","params":{"q":"x","n":2},"timeout_us":1500,"extra":true}`,
			message{id: 5, call: &childCall{kind: kindCall, parent: 3, target: "geo", method: "find",
				params: map[string]any{"q": "x", "n": int64(2)}, timeout: 1500 * time.Microsecond}}, ""},
		{"call without params", mustCBOR(t, map[string]any{"t": "call", "id": int64(5), "parent": int64(3), "target": "geo", "method": "find", "params": nil}),
			`{"t":"call","id":5,"parent":3,"target":"geo","method":"find","params":null}`,
			message{id: 5, call: &childCall{kind: kindCall, parent: 3, target: "geo", method: "find", params: map[string]any{}}}, ""},
		{"cancel", mustCBOR(t, map[string]any{"t": "cancel", "id": int64(5)}), `{"t":"cancel","id":5}`,
			message{id: 5, call: &childCall{kind: kindCancel}}, ""},
		{"no parent", mustCBOR(t, map[string]any{"t": "call", "id": int64(5), "target": "geo", "method": "find"}),
			`{"t":"call","id":5,"target":"geo","method":"find"}`, message{}, `no integer "parent"`},
		{"no target", mustCBOR(t, map[string]any{"t": "call", "id": int64(5), "parent": int64(1), "method": "find"}),
			`{"t":"call","id":5,"parent":1,"method":"find"}`, message{}, `no "target"`},
		{"no method", mustCBOR(t, map[string]any{"t": "call", "id": int64(5), "parent": int64(1), "target": "geo", "method": ""}),
			`{"t":"call","id":5,"parent":1,"target":"geo","method":""}`, message{}, `no "method"`},
		{"params not a map", mustCBOR(t, map[string]any{"t": "call", "id": int64(5), "parent": int64(1), "target": "geo", "method": "m", "params": []any{}}),
			`{"t":"call","id":5,"parent":1,"target":"geo","method":"m","params":[]}`, message{}, `"params" is array, not a map`},
		{"float timeout", mustCBOR(t, map[string]any{"t": "call", "id": int64(5), "parent": int64(1), "target": "geo", "method": "m", "timeout_us": 1.5}),
			`{"t":"call","id":5,"parent":1,"target":"geo","method":"m","timeout_us":1.5}`, message{}, `"timeout_us" is float, not an integer`},
		{"id 0", mustCBOR(t, map[string]any{"t": "cancel", "id": int64(0)}), `{"t":"cancel","id":0}`, message{}, "a child's ids are from 1"},
		{"no id", mustCBOR(t, map[string]any{"t": "call", "parent": int64(1), "target": "geo", "method": "m"}),
			`{"t":"call","parent":1,"target":"geo","method":"m"}`, message{}, `without "id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, enc := range []string{encCBOR, encJSON} {
				msg, err := tt.read(enc, 2)
				if tt.error != "" {
					tt.wantProtocolError(t, enc, err)
					continue
				}
				if err != nil || !reflect.DeepEqual(msg, tt.want) {
					t.Errorf("%s: %+v (call %+v), %v; want %+v (call %+v)", enc, msg, msg.call, err, tt.want, tt.want.call)
				}
				// A child of version 1 has no such messages.
				_, err = tt.read(enc, 1)
				if err == nil || !strings.Contains(err.Error(), "picked process protocol version 1") {
					t.Errorf("%s, version 1: %v; want a protocol error", enc, err)
				}
			}
		})
	}
	// Keys of version 2 in a reply of version 1 are unknown keys: ignored.
	body := mustCBOR(t, map[string]any{"t": "result", "id": int64(1), "method": int64(5), "params": "x"})
	msg, err := codecFor(encCBOR, 1, bufio.NewReader(bytes.NewReader(frame(body)))).readMessage()
	if err != nil || msg.id != 1 || msg.call != nil {
		t.Errorf("a version 1 reply with other keys: %+v, %v", msg, err)
	}
}

// TestHostReplies: the host's replies to a child's calls, in both
// encodings.
func TestHostReplies(t *testing.T) {
	for _, enc := range []string{encCBOR, encJSON} {
		decode := func(b []byte) map[string]any {
			t.Helper()
			var m map[string]any
			var err error
			if enc == encCBOR {
				if int(binary.BigEndian.Uint32(b)) != len(b)-4 {
					t.Fatalf("frame length %d for %d bytes", binary.BigEndian.Uint32(b), len(b)-4)
				}
				m, err = cbor.UnmarshalMap(b[4:])
			} else {
				if b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
					t.Fatalf("json reply %q", b)
				}
				m, err = parseJSONObject(b[:len(b)-1], 10)
			}
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		c := codecFor(enc, 2, nil)
		b, err := c.appendReply(nil, 4, map[string]any{"sum": int64(3), "f": 2.0}, nil)
		if m := decode(b); err != nil || !reflect.DeepEqual(m, map[string]any{"t": "result", "id": int64(4), "result": map[string]any{"sum": int64(3), "f": 2.0}}) {
			t.Errorf("%s: result = %v, %v", enc, m, err)
		}
		b, err = c.appendReply(nil, 4, nil, nil)
		if m := decode(b); err != nil || !reflect.DeepEqual(m, map[string]any{"t": "result", "id": int64(4)}) {
			t.Errorf("%s: no result = %v, %v", enc, m, err)
		}
		b, err = c.appendReply(nil, 5, nil, &sdk.Error{Code: sdk.CodeCallDepth, Message: "a → b \xff"})
		want := map[string]any{"t": "error", "id": int64(5), "error": map[string]any{"code": "call_depth", "message": "a → b \uFFFD"}}
		if m := decode(b); err != nil || !reflect.DeepEqual(m, want) {
			t.Errorf("%s: error = %v, %v", enc, m, err)
		}
		if _, err := c.appendReply(nil, 5, map[string]any{"f": func() {}}, nil); sdk.CodeOf(err) != sdk.CodeBadParams || !strings.Contains(err.Error(), "result.f") {
			t.Errorf("%s: a result that cannot be sent: %v", enc, err)
		}
	}
}
