package contract

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteReport writes a verdict for people: the versions and what their bump
// allows, every change with its class, and the conclusion.
//
//	pricing 1.0.0 → 1.1.0: a minor bump, which allows minor changes
//	  minor  quote params.qty: retyped from int32 to int64 (wider)
//	  major  quote params.sku: made required
//	FAIL: the changes need a major bump
func WriteReport(w io.Writer, v Verdict) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s %s → %s: %s, which allows %s changes\n", v.Module, v.Old, v.New, bumpPhrase(v.Bump), v.Allows)
	if len(v.Changes) == 0 {
		fmt.Fprintf(tw, "  no changes to the contract\n")
	}
	for _, c := range v.Changes {
		fmt.Fprintf(tw, "  %s\t%s\n", c.Class, c)
	}
	switch {
	case v.OK && len(v.Changes) == 0:
		fmt.Fprintf(tw, "ok\n")
	case v.OK:
		fmt.Fprintf(tw, "ok: the changes need a %s bump\n", v.Needs)
	default:
		fmt.Fprintf(tw, "FAIL: the changes need a %s bump\n", v.Needs)
	}
	return tw.Flush()
}

func bumpPhrase(b string) string {
	switch b {
	case "none":
		return "the same version"
	case "pre-release":
		return "pre-releases of one version"
	}
	return "a " + b + " bump"
}
