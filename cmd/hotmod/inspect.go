package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/hotmod/hotmod/internal/native"
	"github.com/hotmod/hotmod/internal/process"
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
in the way it loads the artifact exactly as ` + "`hotmod serve`" + ` would (probe in a
child process, then open) and shows its manifest.

Exit status 0 when this hotmod can load it, 1 (with the reasons) when not.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
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
	cmd.Flags().StringArray("allow-command", nil, "as for serve: a program launch files may start besides those in their own directory; repeatable")
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
	in := &inspection{File: abs, Size: int64(len(data)), Sum: hex.EncodeToString(sum[:]),
		Transport: "native", Host: hostVersion()}
	if process.IsArtifact(abs) {
		return inspectProcess(cmd, in)
	}
	if filepath.Ext(abs) == ".wasm" {
		return inspectWasm(cmd, in)
	}

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

	// Load it as the daemon would. The private copy goes to a temporary
	// directory; this process ends soon, so the open plugin does no harm.
	tmp, err := os.MkdirTemp("", "hotmod-inspect-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	inst, err := native.NewLoader(tmp, logger).Load(cmd.Context(), abs)
	if err != nil {
		in.Problems = []string{sdk.AsError(err).Message}
		return in, nil
	}
	m := inst.Manifest()
	in.Manifest, in.Loadable = &m, true
	return in, nil
}

// inspectProcess starts a process module as the daemon would, reads its
// manifest from the handshake and stops it. A Go-built executable also shows
// its build info (any Go version loads: nothing is compared).
func inspectProcess(cmd *cobra.Command, in *inspection) (*inspection, error) {
	in.Transport = "process"
	if bi, err := buildinfo.ReadFile(in.File); err == nil {
		in.Build = &buildReport{Path: bi.Path, GoVersion: bi.GoVersion, Settings: map[string]string{}, Deps: []depReport{}}
		for _, s := range bi.Settings {
			in.Build.Settings[s.Key] = s.Value
		}
	}
	tmp, err := os.MkdirTemp("", "hotmod-inspect-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	allowed, _ := cmd.Flags().GetStringArray("allow-command")
	inst, err := process.NewLoader(process.Config{Logger: logger, Dir: tmp, AllowCommands: allowed}).Load(cmd.Context(), in.File)
	if err != nil {
		in.Problems = []string{sdk.AsError(err).Message}
		return in, nil
	}
	defer inst.Close()
	m := inst.Manifest()
	in.Manifest, in.Loadable = &m, true
	return in, nil
}

// inspectWasm compiles the module (from the same on-disk cache the daemon
// uses by default), starts one guest and reads its manifest and ABI.
func inspectWasm(cmd *cobra.Command, in *inspection) (*inspection, error) {
	in.Transport = "wasm"
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	tiers, _ := cmd.Flags().GetStringArray("wasm-tier")
	if err := wasm.CheckTiers(tiers); err != nil {
		return nil, usagef("--wasm-tier: %v", err)
	}
	got, err := wasm.Inspect(cmd.Context(), in.File, wasm.Config{CacheDir: wasm.DefaultCacheDir(), Logger: logger, Tiers: tiers})
	if err != nil {
		in.Problems = []string{sdk.AsError(err).Message}
		return in, nil
	}
	in.Build = &buildReport{GoVersion: got.About.Go, Settings: map[string]string{"abi": got.About.ABI, "sdk": got.About.SDK}, Deps: []depReport{}}
	m := got.Manifest
	in.Manifest, in.Tier = &m, string(got.Tier)
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
