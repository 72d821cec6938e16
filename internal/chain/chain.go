// Package chain carries a chain of module-to-module calls in a context: who
// called whom, so that the host can stop a chain that grows past its depth
// limit (a → b → a …) with an error that shows it, and so that transports
// can tell a nested call from a call of the host's own.
package chain

import (
	"context"
	"strings"
)

// Frame is one hop of a chain: the module version that made a call.
type frame struct {
	caller string // name@version
	parent *frame
	depth  int // hops so far, counting this one
}

type key struct{}

// Push returns ctx recording that caller (name@version) is calling further,
// and the depth of the chain including this hop.
func Push(ctx context.Context, caller string) (context.Context, int) {
	parent, _ := ctx.Value(key{}).(*frame)
	f := &frame{caller: caller, parent: parent, depth: 1}
	if parent != nil {
		f.depth = parent.depth + 1
	}
	return context.WithValue(ctx, key{}, f), f.depth
}

// Depth is the number of module-to-module hops ctx is inside: 0 for a call
// made by the host's own code.
func Depth(ctx context.Context) int {
	if f, _ := ctx.Value(key{}).(*frame); f != nil {
		return f.depth
	}
	return 0
}

// Path shows the chain in ctx, outermost caller first, followed by next:
// "a@1.0.0 → b@2.1.0 → a".
func Path(ctx context.Context, next string) string {
	var hops []string
	for f, _ := ctx.Value(key{}).(*frame); f != nil; f = f.parent {
		hops = append(hops, f.caller)
	}
	var b strings.Builder
	for i := len(hops) - 1; i >= 0; i-- {
		b.WriteString(hops[i])
		b.WriteString(" → ")
	}
	b.WriteString(next)
	return b.String()
}

// Caller is the module version (name@version) that made the innermost call
// of the chain in ctx, or "" for a call made by the host's own code.
func Caller(ctx context.Context) string {
	if f, _ := ctx.Value(key{}).(*frame); f != nil {
		return f.caller
	}
	return ""
}
