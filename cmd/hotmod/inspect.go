package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/hotmod/hotmod/internal/artifact"
	"github.com/hotmod/hotmod/internal/native"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
	"github.com/spf13/cobra"
)

// inspection is what inspect reports, and its --json form.
type inspection struct {
	File      string        `json:"file"`
	Size      int64         `json:"size"`
	Sum       string        `json:"sha256"`
	Transport string        `json:"transport"`
	Loadable  bool          `json:"loadable"`
	Problems  []string      `json:"problems,omitempty"` // why not, when not
	Manifest  *sdk.Manifest `json:"manifest,omitempty"` // known only when loadable
	Tier      string        `json:"tier,omitempty"`     // wasm: the isolation tier serve would give it (with the same --wasm-tier)
	Build     *buildReport  `json:"build,omitempty"`
	Host      string        `json:"host"` // this hotmod's Go version
}

type buildReport struct {
	Path      string            `json:"path"`
	GoVersion string            `json:"go_version"`
	Settings  map[string]string `json:"settings"`
	Deps      []depReport       `json:"deps"`
}

type depReport struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Replace string `json:"replace,omitempty"`
}

func inspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE [--json]",
		Short: "Show what an artifact is and whether this hotmod can load it",
		Long: `inspect reads an artifact's Go build info (Go version, build settings,
modules it links) and checks it against this hotmod binary; if nothing stands
in the way it reads the artifact's manifest with its transport's loader, as
` + "`hotmod serve`" + ` would (a native plugin in a throwaway child process, a wasm
module in its sandbox, a process module from its handshake) and shows it.

Exit status 0 when this hotmod can load it, 1 (with the reasons) when not.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if grants, _ := cmd.Flags().GetStringArray("wasm-grant"); len(grants) > 0 {
				if err := wasm.CheckGrants(grants); err != nil {
					return usagef("--wasm-grant: %v", err)
				}
			}
			if tiers, _ := cmd.Flags().GetStringArray("wasm-tier"); len(tiers) > 0 {
				if err := wasm.CheckTiers(tiers); err != nil {
					return usagef("--wasm-tier: %v", err)
				}
			}
			in, err := inspect(cmd, a[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				if err := enc.Encode(in); err != nil {
					return err
				}
			} else {
				writeInspection(out, in)
			}
			if !in.Loadable {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s cannot be loaded by this hotmod (%s):\n  - %s\n",
					in.File, in.Host, strings.Join(in.Problems, "\n  - "))
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addAllowCommandFlag(cmd)
	cmd.Flags().StringArray("wasm-grant", nil, "as for serve: a capability granted to wasm modules (env=NAME, fs=DIR, fs-ro=DIR, -clock), optionally for one module (pricing:fs-ro=/srv); decides whether a module asking for it is loadable; repeatable")
	cmd.Flags().StringArray("wasm-tier", nil, "as for serve: the isolation tier of WebAssembly modules (trusted, or pricing=trusted), to see the tier one would get; repeatable")
	return cmd
}

func inspect(cmd *cobra.Command, file string) (*inspection, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	sum := sha256.Sum256(data)
	kind := artifact.KindOf(abs)
	in := &inspection{File: abs, Size: int64(len(data)), Sum: hex.EncodeToString(sum[:]),
		Transport: string(kind), Host: hostVersion()}
	switch kind {
	case artifact.Native:
		rep, err := native.Preflight(abs)
		if err != nil {
			in.Problems = []string{err.Error()}
			return in, nil
		}
		in.Build = &buildReport{Path: rep.Path, GoVersion: rep.GoVersion, Settings: rep.Settings, Deps: []depReport{}}
		for _, d := range rep.Deps {
			in.Build.Deps = append(in.Build.Deps, depReport{d.Path, d.Version, d.Replace})
		}
		in.Problems = append(in.Problems, rep.Problems...)
		if filepath.Ext(abs) != ".so" {
			in.Problems = append(in.Problems, "`hotmod serve` only picks up native modules named *.so: rename the file")
		}
		if len(in.Problems) > 0 {
			return in, nil
		}
	case artifact.Process:
		// A Go-built executable shows its build info (any Go version
		// loads: nothing is compared).
		if bi, err := buildinfo.ReadFile(abs); err == nil {
			in.Build = &buildReport{Path: bi.Path, GoVersion: bi.GoVersion, Settings: map[string]string{}, Deps: []depReport{}}
			for _, s := range bi.Settings {
				in.Build.Settings[s.Key] = s.Value
			}
		}
	}
	// Read the manifest as the daemon's loader would: a native plugin in a
	// throwaway child, a wasm module in its sandbox, a process module from
	// its handshake.
	got, err := artifact.Read(cmd.Context(), abs, artifactConfig(cmd))
	if err != nil {
		in.Problems = []string{sdk.AsError(err).Message}
		return in, nil
	}
	if a := got.Wasm; a != nil {
		in.Build = &buildReport{GoVersion: a.Go, Settings: map[string]string{"abi": a.ABI, "sdk": a.SDK}, Deps: []depReport{}}
	}
	in.Manifest, in.Tier = &got.Manifest, got.Tier
	if got.Refused != "" {
		in.Problems = []string{got.Refused}
		return in, nil
	}
	in.Loadable = true
	return in, nil
}

func hostVersion() string { return runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH }

// keySettings are the build settings inspect shows, in this order; the
// other GO* settings follow. --json has them all.
var keySettings = []string{"abi", "-buildmode", "-compiler", "CGO_ENABLED", "GOOS", "GOARCH",
	"-race", "-msan", "-asan", "-trimpath", "-gcflags", "-asmflags", "-ldflags", "-tags", "-pgo"}

func writeInspection(w io.Writer, in *inspection) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s\n", in.File)
	fmt.Fprintf(tw, "size\t%d bytes, sha256 %s\n", in.Size, in.Sum)
	if m := in.Manifest; m != nil {
		fmt.Fprintf(tw, "module\t%s@%s (sdk %s, transport %s)\n", m.Name, m.Version, m.SDK, in.Transport)
		if in.Tier != "" {
			fmt.Fprintf(tw, "tier\t%s\n", in.Tier)
		}
		for i, meth := range m.Methods {
			label := ""
			if i == 0 {
				label = "methods"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", label, meth.Name, meth.Doc)
		}
	} else {
		fmt.Fprintf(tw, "module\tunknown: the manifest is read only from an artifact that loads\n")
	}
	if b := in.Build; b != nil {
		fmt.Fprintf(tw, "go\t%s\n", b.GoVersion)
		fmt.Fprintf(tw, "settings\t%s\n", settingsLine(b.Settings))
		for i, d := range b.Deps {
			label := ""
			if i == 0 {
				label = "deps"
			}
			dep := d.Path + " " + d.Version
			if d.Replace != "" {
				dep += " => " + d.Replace
			}
			fmt.Fprintf(tw, "%s\t%s\n", label, dep)
		}
	}
	if in.Loadable {
		fmt.Fprintf(tw, "loadable\tyes, by this hotmod (%s)\n", in.Host)
	} else {
		fmt.Fprintf(tw, "loadable\tno, not by this hotmod (%s)\n", in.Host)
	}
	tw.Flush()
}

func settingsLine(s map[string]string) string {
	var parts []string
	seen := map[string]bool{}
	for _, k := range keySettings {
		if v, ok := s[k]; ok {
			parts = append(parts, k+"="+v)
			seen[k] = true
		}
	}
	var more []string
	for k, v := range s {
		if !seen[k] && strings.HasPrefix(k, "GO") && v != "" {
			more = append(more, k+"="+v)
		}
	}
	sort.Strings(more)
	return strings.Join(append(parts, more...), " ")
}
