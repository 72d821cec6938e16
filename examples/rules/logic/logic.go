// Package logic runs the rules module's expressions with the expr language
// (github.com/expr-lang/expr): it compiles them, keeps a bounded cache of
// compiled programs, and type-checks a rule against example values.
package logic

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Limits on what a caller may ask for.
const (
	// MaxExprBytes is the longest expression accepted.
	MaxExprBytes = 4 << 10
	// MaxNodes bounds an expression's syntax tree (expr.MaxNodes).
	MaxNodes = 2000
	// MaxCached is how many compiled programs an Engine keeps; past it the
	// cache starts over.
	MaxCached = 512
)

// Wants are the result types Check can require of a rule.
var Wants = []string{"any", "bool", "integer", "float", "string"}

// Error is an expression that does not compile (Compile) or failed while it
// ran, with where (line and column, counted from 1).
type Error struct {
	Compile      bool
	Message      string
	Line, Column int
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (line %d, column %d)", e.Message, e.Line, e.Column)
}

// Engine compiles and runs expressions. Its methods are safe for concurrent
// use.
type Engine struct {
	mu       sync.Mutex
	programs map[string]*vm.Program
}

// NewEngine returns an Engine with an empty cache.
func NewEngine() *Engine {
	return &Engine{programs: make(map[string]*vm.Program)}
}

// Eval runs expression against env and returns what it returned, as expr
// gives it (Go values; see format.Value). The compiled program is cached:
// an expression is compiled once whatever env it later runs against.
func (e *Engine) Eval(expression string, env map[string]any) (any, error) {
	p, err := e.program(expression)
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = map[string]any{}
	}
	v, err := expr.Run(p, env)
	if err != nil {
		return nil, exprError(err, false)
	}
	return v, nil
}

// Cached returns how many compiled programs e keeps.
func (e *Engine) Cached() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.programs)
}

func (e *Engine) program(expression string) (*vm.Program, error) {
	if err := checkSize(expression); err != nil {
		return nil, err
	}
	e.mu.Lock()
	p, ok := e.programs[expression]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := expr.Compile(expression, expr.MaxNodes(MaxNodes))
	if err != nil {
		return nil, exprError(err, true)
	}
	e.mu.Lock()
	if len(e.programs) >= MaxCached {
		clear(e.programs)
	}
	e.programs[expression] = p
	e.mu.Unlock()
	return p, nil
}

// Check compiles expression against the types of env's values (variables
// that env lacks are errors) and requires the result to be of type want,
// one of Wants ("" is "any"). It returns the type the expression returns,
// in the value model's words, or an *Error.
func Check(expression string, env map[string]any, want string) (string, error) {
	if err := checkSize(expression); err != nil {
		return "", err
	}
	opts := []expr.Option{expr.Env(envOrEmpty(env)), expr.MaxNodes(MaxNodes)}
	switch want {
	case "", "any":
	case "bool":
		opts = append(opts, expr.AsBool())
	case "integer":
		opts = append(opts, expr.AsInt64())
	case "float":
		opts = append(opts, expr.AsFloat64())
	case "string":
		opts = append(opts, expr.AsKind(reflect.String))
	default:
		return "", fmt.Errorf("want %q is not a type check knows: use one of %v", want, Wants)
	}
	p, err := expr.Compile(expression, opts...)
	if err != nil {
		return "", exprError(err, true)
	}
	return typeName(p.Node().Type()), nil
}

// ErrTooLong and ErrEmpty are what Eval and Check say of an expression they
// do not try to compile.
var (
	ErrTooLong = fmt.Errorf("the expression is longer than %d bytes: split the rule", MaxExprBytes)
	ErrEmpty   = errors.New("the expression is empty: give one, e.g. `price * qty > 100`")
)

func checkSize(expression string) error {
	switch {
	case expression == "":
		return ErrEmpty
	case len(expression) > MaxExprBytes:
		return ErrTooLong
	}
	return nil
}

func envOrEmpty(env map[string]any) map[string]any {
	if env == nil {
		return map[string]any{}
	}
	return env
}

// exprError keeps what expr says and where, without its multi-line
// snippet of the source.
func exprError(err error, compile bool) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &Error{Compile: compile, Message: fe.Message, Line: fe.Line, Column: fe.Column + 1}
	}
	return &Error{Compile: compile, Message: err.Error(), Line: 1, Column: 1}
}

// typeName names a compiled expression's result type in the value model's
// words; "any" when it is known only at run time.
func typeName(t reflect.Type) string {
	if t == nil {
		return "any"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map:
		return "object"
	}
	return "any"
}
