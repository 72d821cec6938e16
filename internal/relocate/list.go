package relocate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// pkg is what `go list -deps -json` says of one package.
type pkg struct {
	ImportPath string
	Dir        string
	Name       string
	Standard   bool
	Module     *module

	GoFiles, CgoFiles, SFiles, HFiles, EmbedFiles []string
	// Files a relocated package cannot carry (see foreign).
	CFiles, CXXFiles, MFiles, FFiles, SwigFiles, SwigCXXFiles, SysoFiles []string

	Imports []string
}

type module struct {
	Path, Version, Dir, GoVersion string
	Main                          bool
	Replace                       *module
}

// listFields are the fields asked of `go list`: fewer fields, less work.
const listFields = "ImportPath,Dir,Name,Standard,Module,GoFiles,CgoFiles,SFiles,HFiles,EmbedFiles," +
	"CFiles,CXXFiles,MFiles,FFiles,SwigFiles,SwigCXXFiles,SysoFiles,Imports"

// list runs `go list -deps` on the main package's files in dir, with the
// build flags that select files (tags, -race, …), and returns every package
// of the build, dependencies first and the main package last.
func list(ctx context.Context, dir string, files, flags, env []string) ([]*pkg, error) {
	args := append([]string{"list", "-deps", "-json=" + listFields}, listFlags(flags)...)
	args = append(append(args, "--"), files...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("`go %s` in %s failed: %w\n%s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []*pkg
	dec := json.NewDecoder(&stdout)
	for {
		p := new(pkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading `go list` output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 || pkgs[len(pkgs)-1].Name != "main" {
		return nil, fmt.Errorf("%s: `go list` found no main package", dir)
	}
	return pkgs, nil
}

// mainModule returns the main module whose directory holds dir (a workspace
// has several), nil outside module mode.
func mainModule(ctx context.Context, dir string, env []string) (*module, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json=Path,Dir,GoVersion,Main")
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("`go list -m` in %s failed: %w\n%s", dir, err, strings.TrimSpace(stderr.String()))
	}
	var best *module
	dec := json.NewDecoder(&stdout)
	for {
		m := new(module)
		if err := dec.Decode(m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading `go list -m` output: %w", err)
		}
		if m.Dir != "" && (dir == m.Dir || strings.HasPrefix(dir, m.Dir+string(filepath.Separator))) &&
			(best == nil || len(m.Dir) > len(best.Dir)) {
			best = m
		}
	}
	return best, nil
}

// listFlags keeps the build flags that change which files a package has.
func listFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if f == "-race" || f == "-msan" || f == "-asan" || strings.HasPrefix(f, "-tags=") {
			out = append(out, f)
		}
	}
	return out
}
