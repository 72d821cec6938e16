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

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hotmod's version and what native modules must be built with",
		Args:  args(0, 0),
		Run: func(cmd *cobra.Command, _ []string) {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "" {
				v = bi.Main.Version
			}
			if v == "" {
				v = "(devel)"
			}
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
