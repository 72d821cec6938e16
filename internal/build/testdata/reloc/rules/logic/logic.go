// Package logic is the module's own subpackage: it uses a dependency and an
// internal package of the module.
package logic

import (
	"example.com/dep"
	"example.com/rules/internal/scale"
)

// Result is what Eval returns.
type Result struct {
	N   int64
	Dep string
}

// Eval computes the answer.
func Eval(x int64) Result {
	r := Result{N: dep.Double(scale.By(x)), Dep: dep.Version}
	return r
}
