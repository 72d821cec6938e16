package chain

import (
	"context"
	"testing"
)

func TestChain(t *testing.T) {
	ctx := context.Background()
	if Depth(ctx) != 0 || Path(ctx, "a") != "a" {
		t.Fatalf("empty chain: depth %d, path %q", Depth(ctx), Path(ctx, "a"))
	}
	a, d1 := Push(ctx, "a@1.0.0")
	b, d2 := Push(a, "b@2.1.0")
	if d1 != 1 || d2 != 2 || Depth(a) != 1 || Depth(b) != 2 {
		t.Fatalf("depths %d %d %d %d", d1, d2, Depth(a), Depth(b))
	}
	if got := Path(b, "a"); got != "a@1.0.0 → b@2.1.0 → a" {
		t.Fatalf("path %q", got)
	}
	// A branch does not see its sibling's hops.
	if c, _ := Push(a, "c@1.0.0"); Path(c, "x") != "a@1.0.0 → c@1.0.0 → x" {
		t.Fatalf("branch path %q", Path(c, "x"))
	}
}
