// Command rules is a module that wraps a third-party library, the expr
// expression language (github.com/expr-lang/expr), and has packages of its
// own: logic compiles and runs expressions, format holds the result structs
// and turns what an expression returns into the value model.
//
//	hotmod invoke rules eval '{"expr":"price * qty > 100","env":{"price":30,"qty":4}}'
//	→ {"type":"bool","value":true}
//	hotmod invoke rules check '{"expr":"price * qty","env":{"price":30,"qty":4},"want":"integer"}'
//	→ {"column":0,"error":"","line":0,"ok":true,"output":"integer"}
//	hotmod invoke rules match '{"rules":{"big":"total > 100","vip":"user.tier == \"gold\""},"env":{"total":120,"user":{"tier":"gold"}}}'
//	→ {"matched":["big","vip"],"ran":2}
//
// eval and check are typed (their params and results are structs); match is
// dynamic (it reads a map of rules whose names are the caller's). The same
// source builds for every transport: `hotmod build --transport native|wasm|process`.
package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/hotmod/hotmod/examples/rules/format"
	"github.com/hotmod/hotmod/examples/rules/logic"
	"github.com/hotmod/hotmod/sdk"
)

const version = "1.0.0"

// MaxRules is how many rules one match call may run.
const MaxRules = 256

var engine = logic.NewEngine()

var Module = sdk.New("rules", version).
	Method(sdk.Func("eval", eval, sdk.Doc("evaluates an expr expression against env"))).
	Method(sdk.Func("check", check, sdk.Doc("compile-checks an expression against the types of env's values"))).
	Handle("match", match, sdk.Doc(`{"rules": {name: expression}, "env": {…}} → {"matched": [names of the rules that hold], "ran": n}`)).
	OnCheck(func(context.Context) error {
		// The self-test the host runs before routing calls here.
		v, err := engine.Eval("1 + 2 * x", map[string]any{"x": int64(3)})
		if out, _ := format.Value(v); err != nil || out != int64(7) {
			return fmt.Errorf("1 + 2 * 3 gave %v, %v; want 7", v, err)
		}
		return nil
	})

// EvalParams are eval's params.
type EvalParams struct {
	Expr string         `hotmod:"expr,id=1,required"`
	Env  map[string]any `hotmod:"env,id=2"`
}

// CheckParams are check's params: env's values are examples whose types
// the expression is checked against.
type CheckParams struct {
	Expr string         `hotmod:"expr,id=1,required"`
	Env  map[string]any `hotmod:"env,id=2"`
	Want string         `hotmod:"want,id=3,default=any"`
}

func eval(_ context.Context, in EvalParams) (format.Result, error) {
	v, err := engine.Eval(in.Expr, in.Env)
	if err != nil {
		return format.Result{}, failed(err)
	}
	out, err := format.Value(v)
	if err != nil {
		return format.Result{}, sdk.Errorf(sdk.CodeBadParams, "%s", err)
	}
	return format.NewResult(out), nil
}

func check(_ context.Context, in CheckParams) (format.Check, error) {
	output, err := logic.Check(in.Expr, in.Env, in.Want)
	var ce *logic.Error
	switch {
	case errors.As(err, &ce) && ce.Compile:
		return format.Check{Error: ce.Message, Line: int64(ce.Line), Column: int64(ce.Column)}, nil
	case err != nil:
		return format.Check{}, sdk.Errorf(sdk.CodeBadParams, "%s", err)
	}
	return format.Check{OK: true, Output: output}, nil
}

func match(_ context.Context, p map[string]any) (map[string]any, error) {
	rules, ok := p["rules"].(map[string]any)
	if !ok {
		return nil, sdk.Errorf(sdk.CodeBadParams, `"rules" must be an object of rule name → expression, got %s`, sdk.TypeName(p["rules"]))
	}
	if len(rules) > MaxRules {
		return nil, sdk.Errorf(sdk.CodeBadParams, "%d rules: one call runs at most %d", len(rules), MaxRules)
	}
	env, ok := p["env"].(map[string]any)
	if !ok && p["env"] != nil {
		return nil, sdk.Errorf(sdk.CodeBadParams, `"env" must be an object, got %s`, sdk.TypeName(p["env"]))
	}
	names := make([]string, 0, len(rules))
	for name := range rules {
		names = append(names, name)
	}
	sort.Strings(names) // the first failing rule is the same on every call
	var matched []string
	for _, name := range names {
		expression, ok := rules[name].(string)
		if !ok {
			return nil, sdk.Errorf(sdk.CodeBadParams, "rule %q must be a string, got %s", name, sdk.TypeName(rules[name]))
		}
		v, err := engine.Eval(expression, env)
		if err != nil {
			return nil, sdk.Errorf(sdk.CodeBadParams, "rule %q: %s", name, failed(err).Message)
		}
		held, ok := v.(bool)
		if !ok {
			return nil, sdk.Errorf(sdk.CodeBadParams, "rule %q returned %v, not a bool: a rule is a condition", name, v)
		}
		if held {
			matched = append(matched, name)
		}
	}
	return format.Matched(matched, len(names)), nil
}

// failed turns an error of the engine into what the caller is told: every
// failure depends on the caller's expression or env, so it is bad_params
// (which does not count against the module's circuit breaker).
func failed(err error) *sdk.Error {
	var ee *logic.Error
	if errors.As(err, &ee) && ee.Compile {
		return sdk.Errorf(sdk.CodeBadParams, "the expression does not compile: %s", ee)
	}
	if errors.Is(err, logic.ErrEmpty) || errors.Is(err, logic.ErrTooLong) {
		return sdk.Errorf(sdk.CodeBadParams, "%s", err)
	}
	return sdk.Errorf(sdk.CodeBadParams, "the expression failed: %s", err)
}

func main() { sdk.Main(Module) }
