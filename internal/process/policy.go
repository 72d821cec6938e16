package process

import (
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// DefaultMaxSize is Config.MaxSize's default: 256 MiB, several times the
// largest Go executables seen in practice (tens of MiB), while a copy of
// that size in the cache stays cheap.
const DefaultMaxSize = 256 << 20

// checkExecBit refuses an executable artifact that nobody may execute: a
// file copied into the directory by mistake (or by someone who may write
// files there but was not meant to start programs) is not run.
func checkExecBit(path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0 {
		return nil
	}
	return fmt.Errorf("it is not executable (mode %v): a process module must have its execute bit set; run chmod +x %s if it is meant to run", fi.Mode().Perm(), path)
}

// allowedCommand is one entry of Config.AllowCommands, resolved.
type allowedCommand struct {
	given string // as configured
	path  string // after the PATH lookup
	real  string // after symlinks
}

func resolveAllowed(cmds []string) []allowedCommand {
	var out []allowedCommand
	for _, c := range cmds {
		a := allowedCommand{given: c, path: c, real: c}
		if p, err := ResolveCommand(c); err == nil {
			a.path = p
			if real, err := filepath.EvalSymlinks(p); err == nil {
				a.real = real
			}
		}
		out = append(out, a)
	}
	return out
}

// ResolveCommand finds the program an allow-list entry names: an absolute
// path as it is, a bare name in the PATH. A relative path is refused: what
// it names would depend on the working directory.
func ResolveCommand(cmd string) (string, error) {
	switch {
	case cmd == "":
		return "", fmt.Errorf("an empty command")
	case filepath.IsAbs(cmd):
		return filepath.Clean(cmd), nil
	case strings.ContainsRune(cmd, '/') || strings.ContainsRune(cmd, filepath.Separator):
		return "", fmt.Errorf("%q is a relative path: give an absolute path, or a bare name looked up in the PATH", cmd)
	}
	p, err := exec.LookPath(cmd)
	if err != nil {
		return "", fmt.Errorf("%q is not in the PATH: %v", cmd, err)
	}
	return filepath.Abs(p)
}

// CheckCommands resolves every entry of an allow-list, so that a mistake is
// reported when the host starts rather than at the first launch file.
func CheckCommands(cmds []string) error {
	for _, c := range cmds {
		if _, err := ResolveCommand(c); err != nil {
			return err
		}
	}
	return nil
}

// checkCommand refuses a launch file's command (named command, found at
// cmdPath) unless it lies inside the launch file's directory dir or is on
// the allow-list. A launch file is plain text: without this, anyone who may
// write one into the directory could start any program on the host.
func (l *Loader) checkCommand(dir, command, cmdPath string) error {
	real := filepath.Clean(cmdPath)
	if r, err := filepath.EvalSymlinks(cmdPath); err == nil {
		real = r
	}
	realDir := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		realDir = r
	}
	if within(realDir, real) || (real == filepath.Clean(cmdPath) && within(dir, real)) {
		return nil
	}
	for _, a := range l.allowed {
		if cmdPath == a.path || real == a.real {
			return nil
		}
	}
	allowed := "none"
	if len(l.allowed) > 0 {
		var names []string
		for _, a := range l.allowed {
			names = append(names, a.given)
		}
		allowed = strings.Join(names, ", ")
	}
	return fmt.Errorf("the launch file's command %q (%s) is outside the launch file's directory %s and not on the allow-list of commands (allowed: %s): "+
		"put the program in that directory, or allow it with `hotmod serve --allow-command %s` (hotmod.WithAllowCommands in a library host)",
		command, real, dir, allowed, command)
}

// within reports whether path lies inside dir.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
