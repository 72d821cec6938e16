package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hotmod/hotmod/internal/contract"
	"github.com/hotmod/hotmod/internal/native"
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

  hotmod contract export ./plugins/pricing.so > pricing.manifest.json
  hotmod contract diff pricing.manifest.json ./plugins/pricing.so`,
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
			r := &contractReader{cmd: cmd}
			defer r.close()
			old, err := r.read(a[0])
			if err != nil {
				return err
			}
			new, err := r.read(a[1])
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
	return cmd
}

func contractExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export ARTIFACT",
		Short: "Write an artifact's manifest as JSON",
		Long: `export loads an artifact as ` + "`hotmod serve`" + ` would and writes its manifest
(methods with their params and result schemas, and fingerprints) as JSON to
stdout. ` + "`hotmod contract diff`" + ` reads the file back. Given a manifest .json
file instead, it checks it and writes it in canonical form.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			r := &contractReader{cmd: cmd}
			defer r.close()
			man, err := r.read(a[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(man)
		},
	}
}

// contractReader reads manifests from files. The artifacts it loads share
// one private directory, removed by close: this process ends soon, so the
// plugins it opened do no harm.
type contractReader struct {
	cmd    *cobra.Command
	loader *native.Loader
	tmp    string
}

func (r *contractReader) close() {
	if r.tmp != "" {
		os.RemoveAll(r.tmp)
	}
}

// read returns the manifest in file: a JSON manifest (its first non-blank
// byte is '{'), or an artifact, loaded by the native loader (probe in a
// child process, then open).
func (r *contractReader) read(file string) (sdk.Manifest, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return sdk.Manifest{}, err
	}
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
	if r.loader == nil {
		if r.tmp, err = os.MkdirTemp("", "hotmod-contract-"); err != nil {
			return sdk.Manifest{}, err
		}
		logger := slog.New(slog.NewTextHandler(r.cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
		r.loader = native.NewLoader(r.tmp, logger)
	}
	inst, err := r.loader.Load(r.cmd.Context(), abs)
	if err != nil {
		return sdk.Manifest{}, fmt.Errorf("%s: %s", file, sdk.AsError(err).Message)
	}
	return inst.Manifest(), nil
}
