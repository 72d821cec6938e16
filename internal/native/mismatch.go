package native

import (
	"debug/buildinfo"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
)

// relocatedPrefix starts the import path of every package `hotmod build`
// relocated (see internal/relocate; not imported here, which would pull
// go/ast into every host).
const relocatedPrefix = "hotmod.reloc/"

const sdkModulePath = "github.com/hotmod/hotmod/sdk"

// mismatchedPackage returns the package named in the runtime's "plugin was
// built with a different version of package P", "" for another message.
func mismatchedPackage(msg string) string {
	const marker = "different version of package "
	i := strings.Index(msg, marker)
	if i < 0 {
		return ""
	}
	p := msg[i+len(marker):]
	if j := strings.IndexAny(p, " ;\n\"'"); j >= 0 {
		p = p[:j]
	}
	return strings.TrimSpace(p)
}

// maxNamed caps the number of loaded artifacts a mismatch message names per
// module entry.
const maxNamed = 3

// mismatchHint explains a refusal for two different copies of one package
// path: it names the package, says from which module (and version, or
// directory) the host, the artifact and the artifacts already loaded have
// it, and what to do about it. loaded lists the artifacts this process has
// opened (original path, private copy).
func mismatchHint(path, pkg string, loaded [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, " — two different copies of package %s: ", pkg)
	var art *debug.Module
	if bi, err := buildinfo.ReadFile(path); err == nil {
		art = moduleOf(bi, pkg)
	}
	// Where else the package comes from, grouped by module entry.
	var origins []string
	byModule := map[string][]string{}
	if m := moduleOf(hostBuildInfo(), pkg); m != nil && (art == nil || len(m.Path) >= len(art.Path)) {
		// (A test binary records no dependencies: its main module would
		// seem to hold every package.)
		origins = append(origins, "this host from "+describeModule(m))
	}
	for _, l := range loaded {
		if bi, err := buildinfo.ReadFile(l[1]); err == nil {
			if m := moduleOf(bi, pkg); m != nil {
				d := describeModule(m)
				byModule[d] = append(byModule[d], l[0])
			}
		}
	}
	for _, d := range slices.Sorted(maps.Keys(byModule)) {
		paths := byModule[d]
		more := ""
		if len(paths) > maxNamed {
			more = fmt.Sprintf(" (and %d more)", len(paths)-maxNamed)
			paths = paths[:maxNamed]
		}
		origins = append(origins, "the already loaded "+strings.Join(paths, ", ")+more+" from "+d)
	}
	switch {
	case isStandard(pkg):
		b.WriteString("it is part of the standard library, so the artifact was built by another Go toolchain or with other build flags than this host: " +
			"rebuild it with this host's `hotmod build` (it uses the host's toolchain and flags), or build it for the wasm or process transport")
		return b.String()
	case art == nil:
		fmt.Fprintf(&b, "the artifact's build info does not name the module of %s", pkg)
	default:
		fmt.Fprintf(&b, "the artifact has it from %s", describeModule(art))
	}
	for _, o := range origins {
		b.WriteString(", " + o)
	}
	if len(origins) == 0 {
		b.WriteString(", and another artifact loaded earlier has a copy of its own")
	}
	b.WriteString(": ")
	switch {
	case strings.HasPrefix(pkg, relocatedPrefix):
		b.WriteString("the path is a relocated one, the same content compiled differently (another relocation cache directory without -trimpath, " +
			"or other build flags) — rebuild the artifact with this host's `hotmod build`")
	case art != nil && art.Path == sdkModulePath:
		b.WriteString("the sdk is shared with the host and must be the host's own: point the module's go.mod at this host's sdk " +
			"(the version, or the replace directory, the host has) and rebuild it with `hotmod build`")
	default:
		b.WriteString("the artifact was built without relocation (not by `hotmod build --transport native`, or with relocation turned off), " +
			"so its packages keep their original paths — rebuild it with `hotmod build --transport native`, which gives every package " +
			"the module does not share with the host a path of its own, or build it for the wasm or process transport")
	}
	return b.String()
}

// moduleOf returns the module of bi that holds package pkg (the longest
// module path that is a prefix of it), nil when none does.
func moduleOf(bi *debug.BuildInfo, pkg string) *debug.Module {
	if bi == nil {
		return nil
	}
	var best *debug.Module
	for _, m := range modulesOf(bi) {
		if (pkg == m.Path || strings.HasPrefix(pkg, m.Path+"/")) && (best == nil || len(m.Path) > len(best.Path)) {
			best = m
		}
	}
	return best
}

// describeModule names a module entry: path, version, and replacement.
func describeModule(m *debug.Module) string {
	s := "module " + m.Path
	if m.Version != "" {
		s += " " + m.Version
	}
	if r := m.Replace; r != nil {
		s += " => " + r.Path
		if r.Version != "" {
			s += " " + r.Version
		}
	}
	return s
}

// isStandard reports whether an import path is the standard library's (its
// first element has no dot).
func isStandard(pkg string) bool {
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}
