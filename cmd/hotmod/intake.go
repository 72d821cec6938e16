package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/process"
	"github.com/hotmod/hotmod/internal/statedir"
	"github.com/spf13/pflag"
)

// intakeFlags are serve's flags for what may be loaded from the directory
// and who owns it.
type intakeFlags struct {
	allowCommands   []string
	maxArtifactSize string
}

func addIntakeFlags(fl *pflag.FlagSet) *intakeFlags {
	f := &intakeFlags{}
	fl.StringArrayVar(&f.allowCommands, "allow-command", nil, "a program that launch files (NAME.process.json) may start besides those inside --dir: an absolute path, or a name looked up in the PATH (python3); it runs with whatever arguments a launch file gives it; repeatable")
	fl.StringVar(&f.maxArtifactSize, "max-artifact-size", "256MiB", "artifacts larger than this are refused before they are read: bytes, or a number with KiB, MiB or GiB")
	return f
}

// options turns the flags into registry options; an allowed command is
// logged as a warning, since it widens what a file dropped into the
// directory can do.
func (f *intakeFlags) options(logger *slog.Logger) ([]hotmod.Option, error) {
	size, err := parseSize(f.maxArtifactSize)
	if err != nil {
		return nil, usagef("--max-artifact-size %q: %v", f.maxArtifactSize, err)
	}
	opts := []hotmod.Option{hotmod.WithMaxArtifactSize(size)}
	if len(f.allowCommands) > 0 {
		if err := process.CheckCommands(f.allowCommands); err != nil {
			return nil, usagef("--allow-command: %v", err)
		}
		var resolved []string
		for _, c := range f.allowCommands {
			p, _ := process.ResolveCommand(c)
			resolved = append(resolved, p)
		}
		logger.Warn("launch files in the module directory may start these programs, with any arguments: whoever can write to the directory can run code through them",
			"allowed", strings.Join(resolved, ", "))
		opts = append(opts, hotmod.WithAllowCommands(f.allowCommands...))
	}
	return opts, nil
}

// parseSize reads "1048576", "512KiB", "256MiB" or "1GiB".
func parseSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("use a positive number of bytes, optionally with KiB, MiB or GiB (256MiB)")
	}
	return n * mult, nil
}

// lockStateDir opens the state directory and takes its lock, so that one daemon serves a directory: a
// second one is told which process holds it. The lock lasts until unlock is
// called or the process ends. Only the process that owns the directory for
// the daemon's whole life takes it (a worker process the daemon starts must
// not: a second descriptor of the same file would not get the lock).
func lockStateDir(dir, stateDir string) (sd *statedir.Dir, unlock func(), err error) {
	sd, err = statedir.Open(stateDir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (--state-dir names another place for it)", err)
	}
	unlock, err = sd.Lock("the state directory")
	if err != nil {
		return nil, nil, fmt.Errorf("another hotmod serve is serving %s: %w; stop it, or give this one another --dir (or --state-dir)", dir, err)
	}
	return sd, unlock, nil
}
