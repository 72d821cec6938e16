package sdk

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/hotmod/hotmod/sdk/wire"
)

// procHost is the host's end of an in-memory process protocol session with
// a processServer (the child side), for testing the child without a process.
type procHost struct {
	t      *testing.T
	toKid  *os.File
	out    *bufio.Reader
	stderr *lockedBuffer
	exit   chan int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProc(t *testing.T, m *Module, env map[string]string) *procHost {
	t.Helper()
	// OS pipes, which buffer as a child's stdin and stdout do.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	h := &procHost{t: t, toKid: inW, out: bufio.NewReader(outR), stderr: &lockedBuffer{}, exit: make(chan int, 1)}
	s := newProcessServer(m, inR, outW, h.stderr, func(k string) string { return env[k] })
	go func() {
		code := s.serve()
		outW.Close()
		h.exit <- code
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
	})
	return h
}

// processHello is the handshake line as a host reads it, with the
// manifest decoded.
type processHello struct {
	Hotmod   string    `json:"hotmod"`
	Version  int       `json:"version,omitempty"`
	Encoding string    `json:"encoding,omitempty"`
	Manifest *Manifest `json:"manifest,omitempty"`
	Error    string    `json:"error,omitempty"`
}

func (h *procHost) hello() processHello {
	h.t.Helper()
	line, err := h.out.ReadBytes('\n')
	if err != nil {
		h.t.Fatalf("reading the hello: %v", err)
	}
	var hl processHello
	if err := json.Unmarshal(line, &hl); err != nil {
		h.t.Fatalf("the hello %q: %v", line, err)
	}
	return hl
}

func (h *procHost) send(msg map[string]any) {
	h.t.Helper()
	body, err := cbor.Marshal(msg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.sendRaw(body)
}

func (h *procHost) sendRaw(body []byte) {
	h.t.Helper()
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := h.toKid.Write(append(frame, body...)); err != nil {
		h.t.Fatalf("writing a request: %v", err)
	}
}

// recv reads one reply.
func (h *procHost) recv() map[string]any {
	h.t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(h.out, hdr[:]); err != nil {
		h.t.Fatalf("reading a reply: %v (stderr: %s)", err, h.stderr)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(h.out, body); err != nil {
		h.t.Fatalf("reading a reply: %v", err)
	}
	m, err := cbor.UnmarshalMap(body)
	if err != nil {
		h.t.Fatalf("a reply that is not a CBOR map: %v", err)
	}
	return m
}

// replies reads n replies and returns them by id.
func (h *procHost) replies(n int) map[int64]map[string]any {
	h.t.Helper()
	got := map[int64]map[string]any{}
	for i := 0; i < n; i++ {
		r := h.recv()
		got[r["id"].(int64)] = r
	}
	return got
}

func (h *procHost) exitCode() int {
	h.t.Helper()
	select {
	case code := <-h.exit:
		return code
	case <-time.After(5 * time.Second):
		h.t.Fatal("the server did not stop")
		return -1
	}
}

var procEnv = map[string]string{processVersionsEnv: "1-1", processEncodingsEnv: "cbor,json"}

// procModule is adder() with methods and hooks for the protocol's paths.
func procModule(events chan<- string) *Module {
	return adder().
		Handle("block", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			events <- "block started"
			<-ctx.Done()
			return nil, ctx.Err()
		}).
		Handle("deadline", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			d, ok := ctx.Deadline()
			return map[string]any{"has": ok, "left_ms": time.Until(d).Milliseconds()}, nil
		}).
		Handle("panic", func(context.Context, map[string]any) (map[string]any, error) {
			panic("boom")
		}).
		Handle("badutf8", func(context.Context, map[string]any) (map[string]any, error) {
			return nil, Errorf(CodeModule, "bad \xff byte")
		}).
		OnInit(func(_ context.Context, c map[string]any) error {
			if c["fail"] == true {
				return Errorf(CodeModule, "init refused")
			}
			events <- "init " + c["who"].(string)
			return nil
		}).
		OnCheck(func(context.Context) error { return errors.New("check failed") }).
		OnClose(func() error {
			events <- "closed"
			return nil
		})
}

func TestProcessHello(t *testing.T) {
	h := startProc(t, adder(), procEnv)
	hl := h.hello()
	if hl.Hotmod != "process" || hl.Version != 1 || hl.Encoding != "cbor" || hl.Error != "" || hl.Manifest == nil {
		t.Fatalf("hello = %+v", hl)
	}
	if want := adder().Manifest(); hl.Manifest.Fingerprint != want.Fingerprint || hl.Manifest.Name != "adder" {
		t.Errorf("manifest = %+v, want %+v", hl.Manifest, want)
	}
	// The manifest is the JSON ParseManifest reads.
	line, _ := json.Marshal(hl.Manifest)
	if m, err := ParseManifest(line); err != nil || m.Fingerprint != hl.Manifest.Fingerprint {
		t.Errorf("ParseManifest(hello manifest) = %v, %v", m.Fingerprint, err)
	}
}

func TestProcessHelloRefusals(t *testing.T) {
	tests := []struct {
		name string
		m    *Module
		env  map[string]string
		want string
	}{
		{"newer host", adder(), map[string]string{processVersionsEnv: "3-4"}, "offers process protocol versions 3-4; this module's sdk " + Version + " speaks versions 1-2"},
		{"bad offer", adder(), map[string]string{processVersionsEnv: "x"}, "not a version range"},
		{"json only", adder(), map[string]string{processEncodingsEnv: "json"}, "a Go module speaks cbor"},
		{"invalid module", New("Bad Name", "1"), procEnv, "module name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startProc(t, tt.m, tt.env)
			hl := h.hello()
			if hl.Hotmod != "process" || !strings.Contains(hl.Error, tt.want) || hl.Manifest != nil {
				t.Errorf("hello = %+v, want an error with %q", hl, tt.want)
			}
			if code := h.exitCode(); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
		})
	}
	// An empty offer means version 1 and CBOR: what a host that sets only
	// HOTMOD_PROCESS gets.
	h := startProc(t, adder(), nil)
	if hl := h.hello(); hl.Version != 1 || hl.Error != "" {
		t.Errorf("hello without an offer = %+v", hl)
	}
}

func TestProcessCalls(t *testing.T) {
	events := make(chan string, 10)
	h := startProc(t, procModule(events), procEnv)
	h.hello()
	h.send(map[string]any{"t": "call", "id": int64(1), "method": "add", "params": map[string]any{"a": int64(2), "b": int64(40)}})
	h.send(map[string]any{"t": "call", "id": int64(2), "method": "nope", "params": map[string]any{}})
	h.send(map[string]any{"t": "call", "id": int64(3), "method": "add", "params": map[string]any{"a": "x", "b": int64(1)}})
	h.send(map[string]any{"t": "call", "id": int64(4), "method": "panic"})
	h.send(map[string]any{"t": "ping", "id": int64(5)})
	h.send(map[string]any{"t": "call", "id": int64(6), "method": "badutf8", "params": map[string]any{}})
	h.send(map[string]any{"t": "call", "id": int64(7), "method": "deadline", "params": map[string]any{}, "timeout_us": int64(5e6)})
	h.send(map[string]any{"t": "future", "id": int64(8), "extra": []any{int64(1)}})
	h.send(map[string]any{"t": "call", "id": int64(9), "method": "add", "params": map[string]any{"a": int64(1), "b": int64(1)}, "unknown": "ignored"})
	got := h.replies(9)

	check := func(id int64, t_ string, key string, want any) {
		t.Helper()
		r := got[id]
		if r["t"] != t_ {
			t.Errorf("reply %d = %v, want t=%s", id, r, t_)
			return
		}
		if key == "" {
			return
		}
		var v any = r
		for _, k := range strings.Split(key, ".") {
			v = v.(map[string]any)[k]
		}
		if s, ok := want.(string); ok && strings.HasPrefix(s, "~") {
			if vs, _ := v.(string); !strings.Contains(vs, s[1:]) {
				t.Errorf("reply %d: %s = %v, want it to contain %q", id, key, v, s[1:])
			}
			return
		}
		if v != want {
			t.Errorf("reply %d: %s = %#v, want %#v", id, key, v, want)
		}
	}
	check(1, "result", "result.sum", int64(42))
	check(2, "error", "error.code", "unknown_method")
	check(3, "error", "error.message", `"a": want integer, got string`)
	check(4, "error", "error.code", "panic")
	check(4, "error", "error.message", "adder.panic panicked: boom")
	check(5, "result", "", nil)
	if _, has := got[5]["result"]; has {
		t.Errorf("a ping's reply carries a result: %v", got[5])
	}
	check(6, "error", "error.message", "bad \uFFFD byte")
	check(7, "result", "result.has", true)
	if left := got[7]["result"].(map[string]any)["left_ms"].(int64); left < 4000 || left > 5000 {
		t.Errorf("the call's deadline is %dms away, want about 5000", left)
	}
	check(8, "error", "error.code", "internal")
	check(8, "error", "error.message", `~unknown message type "future"`)
	check(9, "result", "result.sum", int64(2))
	if !strings.Contains(h.stderr.String(), "adder.panic panicked: boom") || !strings.Contains(h.stderr.String(), "goroutine") {
		t.Errorf("the panic's stack is not on stderr: %q", h.stderr)
	}
}

func TestProcessCancel(t *testing.T) {
	events := make(chan string, 10)
	h := startProc(t, procModule(events), procEnv)
	h.hello()
	h.send(map[string]any{"t": "call", "id": int64(1), "method": "block", "params": map[string]any{}})
	<-events
	// While block runs, the reader role has moved on: other requests are
	// served, and the cancel reaches the call.
	h.send(map[string]any{"t": "call", "id": int64(2), "method": "add", "params": map[string]any{"a": int64(1), "b": int64(2)}})
	if r := h.recv(); r["id"] != int64(2) {
		t.Fatalf("got %v, want the reply to call 2 while call 1 runs", r)
	}
	h.send(map[string]any{"t": "cancel", "id": int64(1)})
	h.send(map[string]any{"t": "cancel", "id": int64(99)}) // not running: ignored
	r := h.recv()
	if r["id"] != int64(1) || r["t"] != "error" || r["error"].(map[string]any)["code"] != "timeout" {
		t.Errorf("cancelled call: %v", r)
	}
}

func TestProcessTimeout(t *testing.T) {
	events := make(chan string, 10)
	h := startProc(t, procModule(events), procEnv)
	h.hello()
	start := time.Now()
	h.send(map[string]any{"t": "call", "id": int64(1), "method": "block", "params": map[string]any{}, "timeout_us": int64(50000)})
	r := h.recv()
	if r["t"] != "error" || r["error"].(map[string]any)["code"] != "timeout" {
		t.Errorf("call past its timeout: %v", r)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("the call ended after %v, want about 50ms", d)
	}
}

func TestProcessHooksAndClose(t *testing.T) {
	events := make(chan string, 10)
	h := startProc(t, procModule(events), procEnv)
	h.hello()
	h.send(map[string]any{"t": "init", "id": int64(1), "config": map[string]any{"who": "host"}})
	if r := h.recv(); r["t"] != "result" || <-events != "init host" {
		t.Errorf("init: %v", r)
	}
	h.send(map[string]any{"t": "init", "id": int64(2), "config": map[string]any{"fail": true}})
	if r := h.recv(); r["t"] != "error" || r["error"].(map[string]any)["message"] != "init refused" {
		t.Errorf("failing init: %v", r)
	}
	h.send(map[string]any{"t": "check", "id": int64(3)})
	if r := h.recv(); r["t"] != "error" || r["error"].(map[string]any)["code"] != "module_error" {
		t.Errorf("failing check: %v", r)
	}
	h.send(map[string]any{"t": "close", "id": int64(4)})
	if r := h.recv(); r["t"] != "result" || r["id"] != int64(4) {
		t.Errorf("close: %v", r)
	}
	if e := <-events; e != "closed" {
		t.Errorf("OnClose did not run: %q", e)
	}
	if code := h.exitCode(); code != 0 {
		t.Errorf("exit code %d after close, want 0", code)
	}
}

func TestProcessEndOfInput(t *testing.T) {
	events := make(chan string, 10)
	h := startProc(t, procModule(events), procEnv)
	h.hello()
	h.toKid.Close() // the host went away
	if code := h.exitCode(); code != 0 {
		t.Errorf("exit code %d at the end of stdin, want 0", code)
	}
	if e := <-events; e != "closed" {
		t.Errorf("OnClose did not run at the end of stdin: %q", e)
	}
}

func TestProcessBrokenInput(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"empty frame", []byte{0, 0, 0, 0}, "announces 0 bytes"},
		{"huge frame", []byte{0xff, 0xff, 0xff, 0xff}, "announces 4294967295 bytes"},
		{"not a map", append([]byte{0, 0, 0, 1}, 0x01), "not a CBOR map"},
		{"no id", append([]byte{0, 0, 0, 8}, mustCBOR(t, map[string]any{"t": "call"})...), `without "id"`},
		{"truncated", []byte{0, 0, 0, 9, 0xa1}, "in the middle of a frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startProc(t, adder(), procEnv)
			h.hello()
			h.toKid.Write(tt.frame)
			if tt.name == "truncated" {
				h.toKid.Close()
			}
			if code := h.exitCode(); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(h.stderr.String(), tt.want) {
				t.Errorf("stderr %q, want it to say %q", h.stderr, tt.want)
			}
		})
	}
}

// TestProcessBurst sends many calls at once: they run on workers, in
// parallel, and every reply finds its id.
func TestProcessBurst(t *testing.T) {
	h := startProc(t, adder(), procEnv)
	h.hello()
	const n = 300
	var batch []byte
	for i := 0; i < n; i++ {
		body := mustCBOR(t, map[string]any{"t": "call", "id": int64(i + 1), "method": "add",
			"params": map[string]any{"a": int64(i + 100), "b": int64(1000)}})
		batch = binary.BigEndian.AppendUint32(batch, uint32(len(body)))
		batch = append(batch, body...)
	}
	go h.toKid.Write(batch)
	got := h.replies(n)
	for i := 0; i < n; i++ {
		r := got[int64(i+1)]
		if res, _ := r["result"].(map[string]any); res["sum"] != int64(i+1100) {
			t.Fatalf("reply %d = %v", i+1, r)
		}
	}
}

func TestPickProcessVersion(t *testing.T) {
	for offer, want := range map[string]int{"": 1, "1": 1, "1-1": 1, "1-5": 2, " 1 - 2 ": 2, "0-1": 0, "2": 2, "2-3": 2, "3": 0, "3-4": 0, "3-1": 0, "a-b": 0, "0": 0} {
		got, err := pickProcessVersion(offer)
		if want == 0 && err == nil || want != 0 && (err != nil || got != want) {
			t.Errorf("pickProcessVersion(%q) = %d, %v; want %d", offer, got, err, want)
		}
	}
}

// FuzzProcessRequest: no request makes the child's decoder panic, and what
// it accepts has what its kind needs.
func FuzzProcessRequest(f *testing.F) {
	for _, v := range []map[string]any{
		{"t": "call", "id": int64(1), "method": "add", "params": map[string]any{"a": int64(1), "b": int64(2)}, "timeout_us": int64(100)},
		{"t": "init", "id": int64(2), "config": nil},
		{"t": "cancel", "id": int64(1)},
		{"t": "what", "x": []any{1.5, "y"}},
		{"t": "result", "id": int64(3), "result": map[string]any{"sum": int64(3)}},
		{"t": "error", "id": int64(4), "error": map[string]any{"code": "call_depth", "message": "a → b"}},
	} {
		f.Add(mustCBOR(f, v))
	}
	s := newProcessServer(adder(), strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" })
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := s.dec.DecodeCBOR(data)
		if err != nil {
			return
		}
		if req.Kind != wire.Unknown && !req.HasID {
			t.Fatalf("a %v request without an id", req.Kind)
		}
		if req.Params != nil {
			if _, err := cbor.UnmarshalMap(req.Params); err != nil {
				t.Fatalf("params that do not decode: %v", err)
			}
		}
		if req.Result != nil {
			if _, err := cbor.UnmarshalMap(req.Result); err != nil {
				t.Fatalf("a result that does not decode: %v", err)
			}
		}
		if req.Kind == wire.Error && req.Err == nil {
			t.Fatalf("an error reply without its error: %+v", req)
		}
	})
}

// TestProcessResultTooBig: a result over the frame limit is an error, not a
// frame the host would refuse.
func TestProcessResultTooBig(t *testing.T) {
	m := New("big", "1.0.0").Handle("big", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"s": strings.Repeat("x", processMaxFrame)}, nil
	})
	h := startProc(t, m, procEnv)
	h.hello()
	h.send(map[string]any{"t": "call", "id": int64(1), "method": "big", "params": map[string]any{}})
	r := h.recv()
	if e, _ := r["error"].(map[string]any); e["code"] != "module_error" || !strings.Contains(e["message"].(string), "frame limit") {
		t.Errorf("reply = %v", r)
	}
}

var procEnv2 = map[string]string{processVersionsEnv: "1-2", processEncodingsEnv: "cbor,json"}

// relayModule calls other modules through Call: relay calls what its
// params say and returns the result (or the error) as it is.
func relayModule(events chan<- string) *Module {
	return New("relay", "1.0.0").
		Requires("callee", "^1").
		Handle("relay", func(ctx context.Context, p map[string]any) (map[string]any, error) {
			if ms, _ := Int(p, "timeout_ms"); ms > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
				defer cancel()
			}
			target, _ := String(p, "target")
			method, _ := String(p, "method")
			params, _ := p["params"].(map[string]any)
			return Call(ctx, target, method, params)
		}).
		Handle("add", func(_ context.Context, p map[string]any) (map[string]any, error) {
			a, _ := Int(p, "a")
			b, _ := Int(p, "b")
			return map[string]any{"sum": a + b}, nil
		}).
		OnInit(func(ctx context.Context, _ map[string]any) error {
			out, err := Call(ctx, "callee", "hello", nil)
			if err != nil {
				return err
			}
			events <- "init got " + out["hi"].(string)
			return nil
		})
}

// TestProcessHostCall: a method's Call goes to the host tagged with the
// request it runs for; the host's result comes back to the method.
func TestProcessHostCall(t *testing.T) {
	h := startProc(t, relayModule(nil), procEnv2)
	if hl := h.hello(); hl.Version != 2 {
		t.Fatalf("hello = %+v, want version 2", hl)
	}
	h.send(map[string]any{"t": "call", "id": int64(7), "method": "relay", "timeout_us": int64(5e6),
		"params": map[string]any{"target": "callee", "method": "add", "params": map[string]any{"a": int64(1), "b": int64(2)}}})
	c := h.recv()
	want := map[string]any{"t": "call", "id": c["id"], "parent": int64(7), "target": "callee", "method": "add",
		"params": map[string]any{"a": int64(1), "b": int64(2)}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("the child's call = %v, want %v (no timeout_us: the request's deadline is the host's already)", c, want)
	}
	if id, _ := c["id"].(int64); id <= 0 {
		t.Fatalf("the call's id is %v", c["id"])
	}
	// Another request is served while the call waits (the call ran on the
	// reader's goroutine: it handed the role on).
	h.send(map[string]any{"t": "call", "id": int64(8), "method": "add", "params": map[string]any{"a": int64(20), "b": int64(22)}})
	if r := h.recv(); r["id"] != int64(8) || r["result"].(map[string]any)["sum"] != int64(42) {
		t.Fatalf("request 8 while call %v waits: %v", c["id"], r)
	}
	h.send(map[string]any{"t": "ping", "id": int64(11)})
	if r := h.recv(); r["id"] != int64(11) || r["t"] != "result" {
		t.Fatalf("ping while call %v waits: %v", c["id"], r)
	}
	h.send(map[string]any{"t": "result", "id": c["id"], "result": map[string]any{"sum": int64(3), "b": []byte{1}}})
	r := h.recv()
	if r["id"] != int64(7) || !reflect.DeepEqual(r["result"], map[string]any{"sum": int64(3), "b": []byte{1}}) {
		t.Fatalf("relay = %v", r)
	}

	// An error keeps its code and message.
	h.send(map[string]any{"t": "call", "id": int64(9), "method": "relay", "params": map[string]any{"target": "callee", "method": "deep"}})
	c = h.recv()
	if c["t"] != "call" || c["parent"] != int64(9) || !reflect.DeepEqual(c["params"], map[string]any{}) {
		t.Fatalf("the child's call = %v", c)
	}
	h.send(map[string]any{"t": "error", "id": c["id"], "error": map[string]any{"code": "call_depth", "message": "relay → relay → relay"}})
	r = h.recv()
	if e, _ := r["error"].(map[string]any); r["id"] != int64(9) || e["code"] != "call_depth" || e["message"] != "relay → relay → relay" {
		t.Fatalf("relay of an error = %v", r)
	}
	// A result of null, or none, is an empty map.
	h.send(map[string]any{"t": "call", "id": int64(10), "method": "relay", "params": map[string]any{"target": "callee", "method": "m"}})
	c = h.recv()
	h.send(map[string]any{"t": "result", "id": c["id"], "result": nil})
	if r = h.recv(); r["id"] != int64(10) || !reflect.DeepEqual(r["result"], map[string]any{}) {
		t.Fatalf("relay of a null result = %v", r)
	}
	// Params outside the value model never leave the child.
	m := New("bad", "1.0.0").Requires("callee", "^1").Handle("bad", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		return Call(ctx, "callee", "m", map[string]any{"ch": make(chan int)})
	})
	h2 := startProc(t, m, procEnv2)
	h2.hello()
	h2.send(map[string]any{"t": "call", "id": int64(1), "method": "bad", "params": map[string]any{}})
	if r := h2.recv(); r["t"] != "error" || !strings.Contains(r["error"].(map[string]any)["message"].(string), "calling callee.m: params.ch") {
		t.Fatalf("a call with bad params = %v", r)
	}
}

// TestProcessHostCallInit: Call works in OnInit, on behalf of the init.
func TestProcessHostCallInit(t *testing.T) {
	events := make(chan string, 1)
	h := startProc(t, relayModule(events), procEnv2)
	h.hello()
	h.send(map[string]any{"t": "init", "id": int64(3), "config": nil})
	c := h.recv()
	if c["t"] != "call" || c["parent"] != int64(3) || c["method"] != "hello" {
		t.Fatalf("the init's call = %v", c)
	}
	h.send(map[string]any{"t": "result", "id": c["id"], "result": map[string]any{"hi": "there"}})
	if r := h.recv(); r["id"] != int64(3) || r["t"] != "result" {
		t.Fatalf("init = %v", r)
	}
	if e := <-events; e != "init got there" {
		t.Errorf("OnInit saw %q", e)
	}
}

// TestProcessHostCallCancel: a call whose context ends is cancelled with
// the host; its late reply is dropped. The method's own deadline goes along
// as timeout_us.
func TestProcessHostCallCancel(t *testing.T) {
	h := startProc(t, relayModule(nil), procEnv2)
	h.hello()
	// recv2 reads the cancel of the child's call and the error reply to
	// the host's request, in either order (their ids are in different
	// spaces: they may be equal).
	// A host answers a cancel at once (the child may be blocked reading
	// until it does).
	recv2 := func(call, req int64) {
		t.Helper()
		var cancelled, failed bool
		for i := 0; i < 2; i++ {
			switch r := h.recv(); {
			case r["t"] == "cancel" && r["id"] == call:
				cancelled = true
				h.send(map[string]any{"t": "error", "id": call, "error": map[string]any{"code": "timeout", "message": "cancelled"}})
			case r["t"] == "error" && r["id"] == req && r["error"].(map[string]any)["code"] == "timeout":
				failed = true
			default:
				t.Fatalf("unexpected %v", r)
			}
		}
		if !cancelled || !failed {
			t.Fatalf("cancelled %v, failed %v", cancelled, failed)
		}
	}
	// The host cancels the request: its call ends, and is cancelled.
	h.send(map[string]any{"t": "call", "id": int64(100), "method": "relay", "params": map[string]any{"target": "callee", "method": "slow"}})
	c := h.recv()
	h.send(map[string]any{"t": "cancel", "id": int64(100)})
	recv2(c["id"].(int64), 100)
	// A reply to a call the module no longer waits for is dropped, and
	// the child serves on.
	h.send(map[string]any{"t": "result", "id": c["id"], "result": map[string]any{}})
	h.send(map[string]any{"t": "error", "id": int64(12345), "error": map[string]any{"code": "timeout", "message": "x"}})

	// The method's own, nearer, deadline.
	start := time.Now()
	h.send(map[string]any{"t": "call", "id": int64(200), "method": "relay", "timeout_us": int64(10e6),
		"params": map[string]any{"target": "callee", "method": "slow", "timeout_ms": int64(100)}})
	c = h.recv()
	if us, _ := c["timeout_us"].(int64); us <= 0 || us > 100e3 {
		t.Errorf("timeout_us = %v, want at most 100ms", c["timeout_us"])
	}
	recv2(c["id"].(int64), 200)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("the call ended after %v, before its deadline", d)
	}
	h.send(map[string]any{"t": "call", "id": int64(300), "method": "add", "params": map[string]any{"a": int64(1), "b": int64(1)}})
	if r := h.recv(); r["id"] != int64(300) {
		t.Errorf("after dropped replies: %v", r)
	}
}

// TestProcessHostCallUndeclared: a module that declared no requirements
// is told so by its sdk, without asking the host.
func TestProcessHostCallUndeclared(t *testing.T) {
	m := New("lonely", "1.0.0").Handle("relay", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		return Call(ctx, "callee", "m", nil)
	})
	h := startProc(t, m, procEnv2)
	h.hello()
	h.send(map[string]any{"t": "call", "id": int64(1), "method": "relay", "params": map[string]any{}})
	r := h.recv()
	if e, _ := r["error"].(map[string]any); e["code"] != "undeclared" ||
		e["message"] != "calling callee.m: module lonely@1.0.0 declared no requirements: declare the modules it calls with Requires (or RequiresCapability)" {
		t.Errorf("Call without requirements = %v", r)
	}
}

// TestProcessHostCallV1: with a host of version 1, Call says why it cannot.
func TestProcessHostCallV1(t *testing.T) {
	h := startProc(t, relayModule(nil), procEnv)
	if hl := h.hello(); hl.Version != 1 {
		t.Fatalf("hello = %+v", hl)
	}
	h.send(map[string]any{"t": "call", "id": int64(1), "method": "relay", "params": map[string]any{"target": "callee", "method": "add"}})
	r := h.recv()
	if e, _ := r["error"].(map[string]any); e["code"] != "incompatible" || !strings.Contains(e["message"].(string), "version 1, which has no calls to other modules") {
		t.Errorf("Call under version 1 = %v", r)
	}
	// A result message is an unknown request in version 1.
	h.send(map[string]any{"t": "result", "id": int64(2)})
	if r := h.recv(); r["id"] != int64(2) || r["error"].(map[string]any)["code"] != "internal" {
		t.Errorf("a result message under version 1 = %v", r)
	}
}

// TestProcessHostCallRecursion: calls on behalf of calls on behalf of
// calls, each waiting for the host, all in one child at once.
func TestProcessHostCallRecursion(t *testing.T) {
	h := startProc(t, relayModule(nil), procEnv2)
	h.hello()
	const depth = 20
	// Request k relays to the host; the host answers the call of request
	// k with request k+1, and so on.
	var calls []int64
	for k := int64(1); k <= depth; k++ {
		h.send(map[string]any{"t": "call", "id": k, "method": "relay", "params": map[string]any{"target": "relay", "method": "relay"}})
		c := h.recv()
		if c["t"] != "call" || c["parent"] != k {
			t.Fatalf("request %d: %v", k, c)
		}
		calls = append(calls, c["id"].(int64))
	}
	for k := depth; k >= 1; k-- {
		h.send(map[string]any{"t": "result", "id": calls[k-1], "result": map[string]any{"k": int64(k)}})
		if r := h.recv(); r["id"] != int64(k) || r["result"].(map[string]any)["k"] != int64(k) {
			t.Fatalf("request %d: %v", k, r)
		}
	}
}

// TestCallContext: a request's context sets no timer until asked, yet
// behaves as context.WithTimeout's: Err after the deadline, Done closed at
// it, derived contexts and context.AfterFunc told when it ends.
func TestCallContext(t *testing.T) {
	s := newProcessServer(adder(), strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" })
	req := &request{ID: 1, Timeout: 30 * time.Millisecond, TraceParent: "00-x"}
	c := s.newCallCtx(req, nil)
	if d, ok := c.Deadline(); !ok || time.Until(d) > 30*time.Millisecond {
		t.Errorf("Deadline = %v, %v", d, ok)
	}
	if c.timer != nil || c.Err() != nil || TraceParent(c) != "00-x" {
		t.Fatalf("a fresh context: timer %v, Err %v, trace %q", c.timer, c.Err(), TraceParent(c))
	}
	time.Sleep(35 * time.Millisecond)
	if c.timer != nil || c.Err() != context.DeadlineExceeded {
		t.Errorf("past its deadline, nobody waiting: timer %v, Err %v", c.timer, c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done is not closed past the deadline")
	}

	// Waiting for it sets the timer; derived contexts and AfterFunc follow.
	c = s.newCallCtx(&request{ID: 2, Timeout: 20 * time.Millisecond}, nil)
	derived, cancel := context.WithCancel(c)
	defer cancel()
	ran := make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })
	select {
	case <-derived.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the derived context did not end at the deadline")
	}
	<-ran
	if derived.Err() != context.DeadlineExceeded && derived.Err() != context.Canceled {
		t.Errorf("derived Err = %v", derived.Err())
	}

	// The host's cancel ends it, with everything derived from it.
	c = s.newCallCtx(&request{ID: 3}, nil)
	derived, cancel = context.WithCancel(c)
	defer cancel()
	stopped := context.AfterFunc(c, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped() {
		t.Error("stop reported that the function ran")
	}
	c.cancel(context.Canceled)
	<-derived.Done()
	if c.Err() != context.Canceled {
		t.Errorf("Err = %v", c.Err())
	}
	if _, ok := c.Deadline(); ok {
		t.Error("a request without timeout_us has a deadline")
	}
}

// TestCallContextExpiredBeforeDone: Done asked for the first time after the
// deadline passed is closed, once.
func TestCallContextExpiredBeforeDone(t *testing.T) {
	s := newProcessServer(adder(), strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" })
	c := s.newCallCtx(&request{ID: 1, Timeout: time.Millisecond}, nil)
	time.Sleep(2 * time.Millisecond)
	<-c.Done()
	c.cancel(context.Canceled)
	if c.Err() != context.DeadlineExceeded {
		t.Errorf("Err = %v", c.Err())
	}
}
