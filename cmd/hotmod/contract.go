package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotmod/hotmod/internal/artifact"
	"github.com/hotmod/hotmod/internal/contract"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
	"github.com/spf13/cobra"
)

// newContractCmd is `hotmod contract`: compare and export module contracts.
func newContractCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contract",
		Short: "Compare the contracts of two module versions, or export one",
		Long: `A module's contract is its manifest: its methods with their params and result
schemas. contract diff tells whether a new version's number matches what
changed (semantic versioning, decided from the schemas); contract export
writes an artifact's manifest as JSON, to keep next to the code or in CI.
Artifacts of every transport are read: NAME.so, NAME.wasm, NAME.process and
NAME.process.json (a launch file starting a program outside its directory
needs --allow-command, as for serve).

  hotmod contract export ./plugins/pricing.so > pricing.manifest.json
  hotmod contract diff pricing.manifest.json ./plugins/pricing.wasm`,
	}
	cmd.AddCommand(contractDiffCmd(), contractExportCmd())
	return cmd
}

func contractDiffCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff OLD NEW [--json]",
		Short: "List the changes between two versions and check NEW's version bump",
		Long: `diff compares two versions of a module, each given as an artifact (loaded as
` + "`hotmod serve`" + ` would) or as a manifest exported by ` + "`hotmod contract export`" + `.
It prints every change with its class (patch, minor, major) and whether NEW's
version number allows them: a minor bump allows minor changes (an optional
field, a new method), only a major bump allows breaking ones (a field removed,
retyped or made required). In 0.y.z a minor bump may break.

Exit status 0 when the bump is big enough, 1 when it is not (the breaking
changes go to stderr) or when a version cannot be read, 2 for a usage error.`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			old, err := readContract(cmd, a[0])
			if err != nil {
				return err
			}
			new, err := readContract(cmd, a[1])
			if err != nil {
				return err
			}
			v, checkErr := contract.Check(old, new)
			if v.Module == "" { // not comparable at all
				return checkErr
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				if err := enc.Encode(v); err != nil {
					return err
				}
			} else if err := contract.WriteReport(out, v); err != nil {
				return err
			}
			if checkErr != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), sdk.AsError(checkErr).Message)
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verdict as JSON")
	addAllowCommandFlag(cmd)
	return cmd
}

func contractExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export ARTIFACT",
		Short: "Write an artifact's manifest as JSON",
		Long: `export reads an artifact's manifest with its transport's loader (a native
plugin in a throwaway child process, a wasm module in its sandbox, a process
module from its handshake) and writes it
(methods with their params and result schemas, and fingerprints) as JSON to
stdout. ` + "`hotmod contract diff`" + ` reads the file back. Given a manifest .json
file instead, it checks it and writes it in canonical form.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			man, err := readContract(cmd, a[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(man)
		},
	}
	addAllowCommandFlag(cmd)
	return cmd
}

// readContract returns the manifest in file: a JSON manifest (its first
// non-blank byte is '{', and its name is not a launch file's), or an
// artifact of any kind, read by its transport's loader (artifact.Read).
func readContract(cmd *cobra.Command, file string) (sdk.Manifest, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return sdk.Manifest{}, err
	}
	if artifact.KindOf(abs) != artifact.Process {
		f, err := os.Open(abs)
		if err != nil {
			return sdk.Manifest{}, fmt.Errorf("contract: %w", err)
		}
		head := make([]byte, 512)
		n, _ := io.ReadFull(f, head)
		f.Close()
		if trimmed := bytes.TrimLeft(head[:n], " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
			data, err := os.ReadFile(abs)
			if err != nil {
				return sdk.Manifest{}, fmt.Errorf("contract: %w", err)
			}
			man, err := sdk.ParseManifest(data)
			if err != nil {
				return sdk.Manifest{}, fmt.Errorf("%s: %w", file, err)
			}
			return man, nil
		}
	}
	r, err := artifact.Read(cmd.Context(), abs, artifactConfig(cmd))
	if err != nil {
		return sdk.Manifest{}, artifactError(file, err)
	}
	return r.Manifest, nil
}

// artifactConfig is what reading an artifact takes from the command's flags
// (--allow-command and, where the command has it, --wasm-grant, as for
// serve) and this user's wasm compilation cache.
func artifactConfig(cmd *cobra.Command) artifact.Config {
	allowed, _ := cmd.Flags().GetStringArray("allow-command")
	grants, _ := cmd.Flags().GetStringArray("wasm-grant") // nil where the command has no such flag
	tiers, _ := cmd.Flags().GetStringArray("wasm-tier")
	return artifact.Config{
		Logger:        slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		AllowCommands: allowed,
		WasmCacheDir:  wasm.DefaultCacheDir(),
		WasmGrants:    grants,
		WasmTiers:     tiers,
	}
}

// addAllowCommandFlag gives a command that reads artifacts serve's rule for
// launch files.
func addAllowCommandFlag(cmd *cobra.Command) {
	cmd.Flags().StringArray("allow-command", nil, "as for serve: a program launch files may start besides those in their own directory; repeatable")
}

// artifactError is a loader's refusal as the CLI prints it: its message,
// naming file unless it already does.
func artifactError(file string, err error) error {
	msg := sdk.AsError(err).Message
	if abs, _ := filepath.Abs(file); strings.Contains(msg, file) || strings.Contains(msg, abs) {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", file, msg)
}
