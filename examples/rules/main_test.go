package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hotmod/hotmod/examples/rules/logic"
	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

// order is the env most cases run against.
var order = map[string]any{"price": int64(30), "qty": int64(4), "user": map[string]any{"tier": "gold"}}

func TestRules(t *testing.T) {
	if err := Module.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Module.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method string
		params       map[string]any
		want         map[string]any
		err          string
	}{
		{"a condition", "eval", map[string]any{"expr": "price * qty > 100", "env": order},
			map[string]any{"value": true, "type": "bool"}, ""},
		{"integers stay integers", "eval", map[string]any{"expr": "price * qty", "env": order},
			map[string]any{"value": int64(120), "type": "integer"}, ""},
		{"a float", "eval", map[string]any{"expr": "price * 1.5", "env": order},
			map[string]any{"value": 45.0, "type": "float"}, ""},
		{"a nested field and a builtin", "eval", map[string]any{"expr": `upper(user.tier) + "!"`, "env": order},
			map[string]any{"value": "GOLD!", "type": "string"}, ""},
		{"an array", "eval", map[string]any{"expr": "map([1, 2, 3], # * qty)", "env": order},
			map[string]any{"value": []any{int64(4), int64(8), int64(12)}, "type": "array"}, ""},
		{"a map", "eval", map[string]any{"expr": "{a: 1, b: [true, nil]}"},
			map[string]any{"value": map[string]any{"a": int64(1), "b": []any{true, nil}}, "type": "object"}, ""},
		{"a time becomes RFC 3339", "eval", map[string]any{"expr": `date("2024-03-01")`},
			map[string]any{"value": "2024-03-01T00:00:00Z", "type": "string"}, ""},
		{"a duration becomes its text", "eval", map[string]any{"expr": `duration("90m")`},
			map[string]any{"value": "1h30m0s", "type": "string"}, ""},
		{"does not compile", "eval", map[string]any{"expr": "price *"}, nil,
			"bad_params: the expression does not compile: unexpected token EOF (line 1, column 7)"},
		{"fails while it runs", "eval", map[string]any{"expr": "order.total"}, nil,
			"bad_params: the expression failed: cannot fetch total from <nil> (line 1, column 7)"},
		{"infinity", "eval", map[string]any{"expr": "1 / 0"}, nil,
			"bad_params: result is +Inf, which JSON cannot carry (a division by zero?)"},
		{"empty", "eval", map[string]any{"expr": ""}, nil,
			"bad_params: the expression is empty: give one, e.g. `price * qty > 100`"},
		{"too long", "eval", map[string]any{"expr": strings.Repeat("1+", logic.MaxExprBytes)}, nil,
			"bad_params: the expression is longer than 4096 bytes: split the rule"},
		{"missing expr", "eval", map[string]any{"env": order}, nil, `bad_params: "expr" is required (a string)`},

		{"checks", "check", map[string]any{"expr": "price * qty", "env": order, "want": "integer"},
			map[string]any{"ok": true, "output": "integer", "error": "", "line": int64(0), "column": int64(0)}, ""},
		{"want defaults to any", "check", map[string]any{"expr": "user.tier", "env": order},
			map[string]any{"ok": true, "output": "any", "error": "", "line": int64(0), "column": int64(0)}, ""},
		{"the wrong type", "check", map[string]any{"expr": "price * qty", "env": order, "want": "bool"},
			map[string]any{"ok": false, "output": "", "error": "expected bool, but got int", "line": int64(1), "column": int64(1)}, ""},
		{"an unknown name, where", "check", map[string]any{"expr": "price *\n  discount", "env": order},
			map[string]any{"ok": false, "output": "", "error": "unknown name discount", "line": int64(2), "column": int64(3)}, ""},
		{"an unknown want", "check", map[string]any{"expr": "price", "want": "date"}, nil,
			`bad_params: want "date" is not a type check knows: use one of [any bool integer float string]`},

		{"matches", "match", map[string]any{"rules": map[string]any{"big": "price * qty > 100", "vip": `user.tier == "gold"`, "small": "qty < 2"}, "env": order},
			map[string]any{"matched": []any{"big", "vip"}, "ran": int64(3)}, ""},
		{"no rule holds", "match", map[string]any{"rules": map[string]any{"small": "qty < 2"}, "env": order},
			map[string]any{"matched": []any{}, "ran": int64(1)}, ""},
		{"a rule that is no condition", "match", map[string]any{"rules": map[string]any{"n": "qty"}, "env": order}, nil,
			`bad_params: rule "n" returned 4, not a bool: a rule is a condition`},
		{"a rule that does not compile", "match", map[string]any{"rules": map[string]any{"a": "qty >", "b": "true"}}, nil,
			`bad_params: rule "a": the expression does not compile: unexpected token EOF (line 1, column 5)`},
		{"rules is no object", "match", map[string]any{"rules": []any{"qty > 1"}}, nil,
			`bad_params: "rules" must be an object of rule name → expression, got array`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bothWays(t, tc.method, tc.params)
			switch {
			case tc.err != "":
				if err == nil || err.Error() != tc.err || !errors.Is(err, sdk.ErrBadParams) {
					t.Fatalf("got %v, %v; want the bad_params error %s", got, err, tc.err)
				}
			case err != nil || !reflect.DeepEqual(got, tc.want):
				t.Errorf("got %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

// bothWays calls method through the native transport's entry point (maps)
// and through the byte transports' (CBOR), fails the test unless both give
// the same answer or the same error, and returns it.
func bothWays(t *testing.T, method string, params map[string]any) (map[string]any, error) {
	t.Helper()
	ctx := context.Background()
	got, err := Module.Invoke(ctx, method, params)
	data, merr := cbor.Marshal(params)
	if merr != nil {
		t.Fatal(merr)
	}
	raw, rawErr := Module.InvokeCBOR(ctx, method, data)
	var fromRaw map[string]any
	if rawErr == nil {
		if fromRaw, rawErr = cbor.UnmarshalMap(raw); rawErr != nil {
			t.Fatalf("the CBOR result: %v", rawErr)
		}
	}
	if fmt.Sprint(err) != fmt.Sprint(rawErr) || !reflect.DeepEqual(got, fromRaw) {
		t.Fatalf("the two entry points disagree:\nInvoke:     %#v, %v\nInvokeCBOR: %#v, %v", got, err, fromRaw, rawErr)
	}
	return got, err
}

func TestRulesSchema(t *testing.T) {
	man := Module.Manifest()
	var names []string
	for _, m := range man.Methods {
		if m.Params.IsDynamic() {
			names = append(names, m.Name+" dynamic")
		} else {
			names = append(names, m.Name+" "+m.Params.String())
		}
	}
	want := []string{
		`check {expr!: string, env: map[any], want: string = "any"}`,
		`eval {expr!: string, env: map[any]}`,
		"match dynamic",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("methods:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}

// TestEngineConcurrent runs many expressions from several goroutines (run it
// with -race): the cache of compiled programs is shared, and it stays within
// MaxCached though twice as many expressions ran.
func TestEngineConcurrent(t *testing.T) {
	e := logic.NewEngine()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2*logic.MaxCached; i++ {
				v, err := e.Eval(fmt.Sprintf("x + %d", i), map[string]any{"x": int64(g)})
				if err != nil || fmt.Sprint(v) != fmt.Sprint(g+i) {
					errs <- fmt.Errorf("x + %d with x = %d: %v, %v", i, g, v, err)
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
	if n := e.Cached(); n == 0 || n > logic.MaxCached {
		t.Errorf("%d programs cached, want 1 to %d", n, logic.MaxCached)
	}
}

// BenchmarkEval measures one eval call through the native entry point:
// with the compiled program cached (the usual case: callers reuse their
// rules), and compiling every time (a new expression per call).
func BenchmarkEval(b *testing.B) {
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		params := map[string]any{"expr": "price * qty > 100 && user.tier == \"gold\"", "env": order}
		for i := 0; i < b.N; i++ {
			if _, err := Module.Invoke(ctx, "eval", params); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compiled each call", func(b *testing.B) {
		e := logic.NewEngine()
		for i := 0; i < b.N; i++ {
			if _, err := e.Eval(fmt.Sprintf("price * qty > %d && user.tier == \"gold\"", i), order); err != nil {
				b.Fatal(err)
			}
		}
	})
}
