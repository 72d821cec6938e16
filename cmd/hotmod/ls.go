package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hotmod/hotmod"
	"github.com/spf13/cobra"
)

func lsCmd() *cobra.Command {
	var addr clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List the modules the daemon holds",
		Long: `ls lists every module version the daemon holds and every artifact that failed
to load, with the reason. An artifact that failed before its manifest could be
read has no module name or version: its file names it.

GOROUTINES is how many goroutines a native module left running (started by
its calls, still running after them) at the daemon's last count; "-" for
transports that run out of the daemon's process.

--json prints the daemon's answer (GET /v1/modules) as it is.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showList(cmd, addr, asJSON, "/v1/modules", func(w io.Writer, list struct {
				Modules []hotmod.ModuleInfo `json:"modules"`
			}) error {
				return writeTable(w, list.Modules)
			})
		},
	}
	addrFlag(cmd, &addr)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeTable writes one line per module version or failed artifact. The
// REASON column appears when something failed; a multi-line reason shows its
// first line (--json has all of it).
func writeTable(w io.Writer, mods []hotmod.ModuleInfo) error {
	if len(mods) == 0 {
		_, err := fmt.Fprintln(w, "no modules loaded: build one into the directory `hotmod serve` watches, e.g. `hotmod build -o ./plugins`")
		return err
	}
	// ROUTE (the share of plain calls each version takes) appears when a
	// module has more than one version listed: then it matters.
	failed, route := false, false
	seen := map[string]bool{}
	for _, m := range mods {
		failed = failed || m.Reason != ""
		route = route || (m.Name != "" && seen[m.Name])
		seen[m.Name] = true
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	header := "MODULE\tVERSION\tTRANSPORT\tSTATE\tIN-FLIGHT\tGOROUTINES\tARTIFACT"
	if route {
		header = "MODULE\tVERSION\tTRANSPORT\tSTATE\tROUTE\tIN-FLIGHT\tGOROUTINES\tARTIFACT"
	}
	if failed {
		header += "\tREASON"
	}
	fmt.Fprintln(tw, header)
	for _, m := range mods {
		inFlight := strconv.FormatInt(m.InFlight, 10)
		if m.State == hotmod.StateFailed {
			inFlight = "-"
		}
		goroutines := "-" // counted for modules in the daemon's process only
		if m.Name != "" && (m.Transport == hotmod.Native || m.Transport == hotmod.Builtin) {
			goroutines = strconv.Itoa(m.Goroutines)
		}
		artifact := "-"
		if m.Artifact != "" {
			artifact = filepath.Base(m.Artifact)
		}
		cols := []string{orDash(m.Name), orDash(m.Version), orDash(string(m.Transport)), m.State.String()}
		if route {
			cols = append(cols, orDash(m.Route))
		}
		line := strings.Join(append(cols, inFlight, goroutines, artifact), "\t")
		if failed {
			line += "\t" + firstLine(m.Reason)
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Padding runs to the last column's start; lines without a REASON keep
	// none of it.
	var out bytes.Buffer
	for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		out.WriteString(strings.TrimRight(l, " "))
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	if first, _, ok := strings.Cut(s, "\n"); ok {
		return first + " …"
	}
	return s
}
