package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/sdk"
	"github.com/spf13/cobra"
)

// version is hotmod's version; release builds set it with
// -ldflags "-X main.version=v1.2.3". Otherwise the module version from the
// build info is used ("(devel)" for a build from a source tree).
var version = ""

// commit is the commit hotmod was built from, when the build info has none
// (builds with -buildvcs=false); `make build` sets it with -ldflags
// "-X main.commit=…".
var commit = ""

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hotmod's version and what native modules must be built with",
		Args:  args(0, 0),
		Run: func(cmd *cobra.Command, _ []string) {
			v := versionString()
			goVersion, flags := build.HostToolchain()
			native := goVersion
			if len(flags) > 0 {
				native += " " + strings.Join(flags, " ")
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "hotmod %s\n", v)
			fmt.Fprintf(out, "go      %s\n", hostVersion())
			fmt.Fprintf(out, "sdk     %s\n", sdk.Version)
			fmt.Fprintf(out, "native  modules must be built with %s (hotmod build does)\n", native)
		},
	}
}

// versionString is hotmod's version and the commit it was built from, as the
// build info records them: "v1.2.3", or "(devel) commit 3f2a9c1d0e4b
// 2026-12-05T10:00:00Z, modified" for a build from a source tree.
func versionString() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if ok && v == "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	if !ok {
		return v
	}
	rev, at, modified := commit, "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v += " commit " + rev
	if at != "" {
		v += " " + at
	}
	if modified {
		v += ", modified"
	}
	return v
}
