package integration

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// rulesEval is what a host that knows the rules module's contract sends to
// and gets from eval, in its own structs.
type (
	rulesEvalIn struct {
		Expr string         `hotmod:"expr,id=1,required"`
		Env  map[string]any `hotmod:"env,id=2"`
	}
	rulesEvalOut struct {
		Value any    `hotmod:"value,id=1"`
		Type  string `hotmod:"type,id=2"`
	}
)

// TestRulesSameOnEveryTransport loads examples/rules (a module that wraps
// the expr language and has packages of its own) built for each transport
// through the library, and asks each the same questions: every transport
// must give the same answers and the same errors, typed and dynamic.
func TestRulesSameOnEveryTransport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules; skipped with -short")
	}
	src := plugintest.Example(t, "rules")
	artifacts := map[string]string{
		"native":  plugintest.Build(t, src),
		"wasm":    plugintest.BuildWasm(t, src),
		"process": plugintest.BuildProcess(t, src),
	}
	order := map[string]any{"price": int64(30), "qty": int64(4), "user": map[string]any{"tier": "gold"}}
	cases := []struct {
		method string
		params map[string]any
		want   map[string]any
		err    string
	}{
		{"eval", map[string]any{"expr": "price * qty > 100", "env": order}, map[string]any{"value": true, "type": "bool"}, ""},
		{"eval", map[string]any{"expr": "price * qty", "env": order}, map[string]any{"value": int64(120), "type": "integer"}, ""},
		{"eval", map[string]any{"expr": "map(items, # / 2)", "env": map[string]any{"items": []any{int64(3), 1.5}}},
			map[string]any{"value": []any{1.5, 0.75}, "type": "array"}, ""},
		{"eval", map[string]any{"expr": `{tier: user.tier, big: price > 10}`, "env": order},
			map[string]any{"value": map[string]any{"tier": "gold", "big": true}, "type": "object"}, ""},
		{"eval", map[string]any{"expr": `b`, "env": map[string]any{"b": []byte("raw")}},
			map[string]any{"value": []byte("raw"), "type": "bytes"}, ""},
		{"eval", map[string]any{"expr": "price *"}, nil,
			"bad_params: the expression does not compile: unexpected token EOF (line 1, column 7)"},
		{"eval", map[string]any{"expr": "nope.x"}, nil, "bad_params: the expression failed: cannot fetch x from <nil> (line 1, column 6)"},
		{"eval", map[string]any{"expr": int64(1)}, nil, `bad_params: "expr": want string, got integer`},
		{"check", map[string]any{"expr": "price > qty", "env": order, "want": "bool"},
			map[string]any{"ok": true, "output": "bool", "error": "", "line": int64(0), "column": int64(0)}, ""},
		{"check", map[string]any{"expr": "price + user", "env": order},
			map[string]any{"ok": false, "output": "", "error": "invalid operation: + (mismatched types int64 and map[string]interface {})",
				"line": int64(1), "column": int64(7)}, ""},
		{"match", map[string]any{"rules": map[string]any{"big": "price * qty > 100", "cheap": "price < 5"}, "env": order},
			map[string]any{"matched": []any{"big"}, "ran": int64(2)}, ""},
		{"match", map[string]any{"rules": "price > 1"}, nil, `bad_params: "rules" must be an object of rule name → expression, got string`},
	}
	ctx := context.Background()
	for _, transport := range []string{"native", "process", "wasm"} {
		artifact := artifacts[transport]
		t.Run(transport, func(t *testing.T) {
			start := time.Now()
			reg := hotmod.New(hotmod.WithLogger(quiet), hotmod.WithCacheDir(t.TempDir()))
			t.Cleanup(func() { _ = reg.Close(context.Background()) })
			if _, err := reg.Load(ctx, artifact); err != nil {
				t.Fatal(err)
			}
			t.Logf("loaded in %v", time.Since(start).Round(time.Millisecond))
			for _, c := range cases {
				got, err := reg.Invoke(ctx, "rules", c.method, c.params)
				if c.err != "" {
					if err == nil || err.Error() != c.err || sdk.CodeOf(err) != sdk.CodeBadParams {
						t.Errorf("%s %v: got %v, %v; want %s", c.method, c.params, got, err, c.err)
					}
					continue
				}
				if err != nil || !reflect.DeepEqual(got, c.want) {
					t.Errorf("%s %v:\n got %#v, %v\nwant %#v", c.method, c.params, got, err, c.want)
				}
			}
			out, err := hotmod.Call[rulesEvalOut](ctx, reg, "rules@^1", "eval", rulesEvalIn{Expr: "qty * 2", Env: order})
			if err != nil || out != (rulesEvalOut{Value: int64(8), Type: "integer"}) {
				t.Errorf("typed eval: %+v, %v", out, err)
			}
		})
	}
}
