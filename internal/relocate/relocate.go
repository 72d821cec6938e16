// Package relocate prepares a private copy of a Go plugin's sources in which
// every package the plugin does not share with its host has an import path
// of its own, so that two versions of a module load side by side in one
// process.
//
// Go's runtime refuses a second, different copy of a package path in one
// process ("plugin was built with a different version of package …"). A
// native module shares the standard library and the hotmod sdk with its host
// (the sdk's types cross the plugin boundary); everything else — the module's
// own packages and every third-party package it imports — is relocated: it
// is copied to `hotmod.reloc/<hash>/<original path>`, and the imports that
// name it are rewritten.
//
// The hash is content-addressed, per module: it covers the files of every
// package of the module that the build uses, the module's path and go line,
// and the content of every module the module imports, directly or not. So
// an unchanged module keeps its path across builds (the go build cache reuses
// it, and Go's runtime accepts an identical package loaded twice), and any
// change in it or below it gives a new path. All packages of one module
// share one hash, which keeps the rules of internal/ directories valid.
//
// Each relocated module is a module of its own in the copy (its original go
// line, so its language version does not change), kept in a cache directory
// named after its hash; Prepare writes it once and reuses it afterwards. The
// main package is copied, with its imports rewritten, into a fresh build
// directory whose go.mod requires the relocated modules and the sdk.
//
// What a relocated package cannot carry is refused with a *Refusal: cgo and
// other non-Go sources, assembly that names a relocated package, importing
// expvar, and calls at package initialisation that register a name in a
// registry of the standard library (flag definitions, http.Handle, …).
package relocate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Prefix is the first element of every relocated import path.
const Prefix = "hotmod.reloc"

// SDK is the module path of the hotmod sdk: shared with the host, never
// relocated.
const SDK = "github.com/hotmod/hotmod/sdk"

// hashLen is the number of hex digits of a relocated module's hash: 80 bits,
// far beyond any number of builds one cache sees.
const hashLen = 20

// Options says what to relocate.
type Options struct {
	// Dir is the main package's directory; Files its source files (names
	// relative to Dir), as the build would compile them.
	Dir   string
	Files []string
	// Env is the go command's environment, Flags the build flags (those that
	// select files, -tags and -race, are passed to `go list`).
	Env, Flags []string
	// Cache is the directory that keeps relocated modules and build
	// directories; created with mode 0700 when missing. Needed only when
	// there is something to relocate.
	Cache string
	// Trimpath says the build uses -trimpath. Without it the compiled code
	// records the copy's directory, so the cache directory is part of the hash
	// (two caches never give one path two different contents).
	Trimpath bool
}

// Result is a prepared build.
type Result struct {
	// Dir is the directory to build in; Files the main package's files.
	Dir   string
	Files []string
	// Moved maps each relocated original import path to its new path; empty
	// when the module shares everything with the host (then Dir is the
	// original directory and nothing was copied).
	Moved map[string]string
	// origins maps each copy's directory to the original's.
	origins map[string]string
}

// Explain rewrites the copies' directories and relocated import paths in the
// go command's output into the original ones (line numbers are the same: a
// rewrite changes only import strings), so that a compile error points at
// the author's file.
func (r *Result) Explain(output string) string {
	type pair struct{ from, to string }
	var pairs []pair
	sep := string(filepath.Separator)
	for d, orig := range r.origins {
		pairs = append(pairs, pair{d + sep, orig + sep})
		// The go command shortens a path relative to where it runs.
		if rel, err := filepath.Rel(r.Dir, d); err == nil && rel != "." {
			pairs = append(pairs, pair{rel + sep, orig + sep})
		}
	}
	for orig, moved := range r.Moved {
		pairs = append(pairs, pair{moved, orig})
	}
	sort.Slice(pairs, func(i, j int) bool { return len(pairs[i].from) > len(pairs[j].from) })
	for _, p := range pairs {
		output = strings.ReplaceAll(output, p.from, p.to)
	}
	return output
}

// Refusal is a package that relocation cannot carry: what, where, why, and
// what to do.
type Refusal struct {
	Package string // import path
	Where   string // a file, or file:line:col
	Reason  string
	Fix     string
}

func (r *Refusal) Error() string {
	where := ""
	if r.Where != "" {
		where = " (" + r.Where + ")"
	}
	return fmt.Sprintf("package %s%s cannot be relocated: %s — %s", r.Package, where, r.Reason, r.Fix)
}

// shared reports whether a package is shared with the host, never relocated.
func shared(p *pkg) bool {
	if p.Standard || p.ImportPath == "C" || p.ImportPath == "unsafe" {
		return true
	}
	return p.Module != nil && p.Module.Path == SDK
}

// group is one relocated module: its packages, and its hashes.
type group struct {
	mod     *module
	pkgs    []*pkg
	imports map[*group]bool
	content string // hash of its own files
	hash    string // hash of its content and all it imports, transitively
	newPath string
}

// Prepare lists the build of o.Files in o.Dir, relocates what the host does
// not share, and returns where to build.
func Prepare(ctx context.Context, o Options) (*Result, error) {
	pkgs, err := list(ctx, o.Dir, o.Files, o.Env, o.Flags)
	if err != nil {
		return nil, err
	}
	main := pkgs[len(pkgs)-1]
	byPath := map[string]*pkg{}
	var sdk *module               // as the original build resolves it
	groups := map[string]*group{} // by module path
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
		if p.Module != nil && p.Module.Path == SDK {
			sdk = p.Module
		}
		if p == main || shared(p) {
			continue
		}
		if p.Module == nil {
			return nil, fmt.Errorf("package %s belongs to no module: relocation needs module mode (GO111MODULE=off is not supported)", p.ImportPath)
		}
		if err := carriable(p); err != nil {
			return nil, err
		}
		g := groups[p.Module.Path]
		if g == nil {
			g = &group{mod: p.Module, imports: map[*group]bool{}}
			groups[p.Module.Path] = g
		}
		g.pkgs = append(g.pkgs, p)
	}
	if err := carriableMain(main); err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return &Result{Dir: o.Dir, Files: o.Files, Moved: map[string]string{}}, nil
	}
	// A list of files is package command-line-arguments, of no module: ask
	// which main module holds the directory.
	if main.Module == nil {
		if main.Module, err = mainModule(ctx, o.Dir, o.Env); err != nil {
			return nil, err
		}
	}
	if main.Module == nil {
		return nil, fmt.Errorf("%s is not in a Go module: a native module needs a go.mod (go mod init)", o.Dir)
	}
	if o.Cache == "" {
		return nil, errors.New("no directory for relocated copies: set XDG_CACHE_HOME or HOME (the user cache directory), or give one (build.Options.RelocateCache)")
	}
	cache, err := filepath.Abs(o.Cache)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cache, "m"), 0o700); err != nil {
		return nil, err
	}
	trim(cache, time.Now())
	salt := ""
	if !o.Trimpath {
		salt = cache
	}
	for _, g := range groups {
		for _, p := range g.pkgs {
			for _, imp := range p.Imports {
				if q := byPath[imp]; q != nil && q.Module != nil {
					if h := groups[q.Module.Path]; h != nil && h != g {
						g.imports[h] = true
					}
				}
			}
		}
		if g.content, err = contentHash(g); err != nil {
			return nil, err
		}
	}
	moved := map[string]string{}
	for _, g := range groups {
		g.hash = pathHash(g, salt)
		g.newPath = Prefix + "/" + g.hash + "/" + g.mod.Path
		for _, p := range g.pkgs {
			moved[p.ImportPath] = g.newPath + strings.TrimPrefix(p.ImportPath, g.mod.Path)
		}
	}
	origins := map[string]string{}
	for _, g := range groups {
		if err := materialize(cache, g, moved); err != nil {
			return nil, err
		}
		for _, p := range g.pkgs {
			origins[filepath.Join(cache, "m", g.hash, filepath.FromSlash(relPath(p, g.mod)))] = p.Dir
		}
	}
	res, err := buildDir(cache, main, sdk, groups, moved, o)
	if err != nil {
		return nil, err
	}
	origins[res.Dir] = main.Dir
	res.origins = origins
	return res, nil
}

// foreign lists the files of p that a relocated package cannot carry.
func foreign(p *pkg) []string {
	var out []string
	for _, l := range [][]string{p.CgoFiles, p.CFiles, p.CXXFiles, p.MFiles, p.FFiles, p.SwigFiles, p.SwigCXXFiles, p.SysoFiles} {
		out = append(out, l...)
	}
	return out
}

// carriable refuses a package that relocation cannot carry.
func carriable(p *pkg) error {
	if f := foreign(p); len(f) > 0 {
		return &Refusal{Package: p.ImportPath, Where: strings.Join(f, ", "),
			Reason: "it uses cgo or non-Go sources, whose C symbols are global: two versions loaded side by side would share one copy of them",
			Fix:    "build the module for the wasm or process transport, or keep that code out of the native module"}
	}
	if slices.Contains(p.Imports, "expvar") {
		return &Refusal{Package: p.ImportPath,
			Reason: "it imports expvar, whose variables are process-wide names: the next version would publish the same names and panic",
			Fix:    "report through the module's methods (or metrics the host owns) instead, or build the module for the wasm or process transport"}
	}
	return nil
}

// carriableMain: the main package is not relocated (each build has a plugin
// path of its own) but it runs its init once per version too.
func carriableMain(p *pkg) error {
	if slices.Contains(p.Imports, "expvar") {
		return carriable(&pkg{ImportPath: "main (" + p.Dir + ")", Imports: p.Imports})
	}
	return nil
}

// contentHash hashes a module's own files: the module path and go line, and
// for each package (by path) each file's name and content.
func contentHash(g *group) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "module %s\ngo %s\n", g.mod.Path, g.mod.GoVersion)
	sort.Slice(g.pkgs, func(i, j int) bool { return g.pkgs[i].ImportPath < g.pkgs[j].ImportPath })
	for _, p := range g.pkgs {
		fmt.Fprintf(h, "package %s %s\n", p.ImportPath, p.Name)
		for _, name := range copied(p) {
			data, err := os.ReadFile(filepath.Join(p.Dir, name))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "file %q %d\n", name, len(data))
			h.Write(data)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copied lists the files of p a copy needs, sorted: Go and assembly
// sources, headers, embedded files.
func copied(p *pkg) []string {
	var out []string
	for _, l := range [][]string{p.GoFiles, p.SFiles, p.HFiles, p.EmbedFiles} {
		out = append(out, l...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// pathHash hashes a module's content with the content of every module it
// reaches: a change anywhere below gives a new path. Cycles between modules
// (possible, unlike between packages) need no special case.
func pathHash(g *group, salt string) string {
	seen := map[*group]bool{g: true}
	stack := []*group{g}
	var below []string
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for y := range x.imports {
			if !seen[y] {
				seen[y] = true
				below = append(below, y.content)
				stack = append(stack, y)
			}
		}
	}
	sort.Strings(below)
	h := sha256.New()
	fmt.Fprintf(h, "self %s\nsalt %q\n", g.content, salt)
	for _, c := range below {
		fmt.Fprintf(h, "below %s\n", c)
	}
	return hex.EncodeToString(h.Sum(nil))[:hashLen]
}

// materialize writes g's relocated copy into <cache>/m/<hash> unless it is
// there already: written into a temporary directory and renamed into place,
// so a copy that exists is complete.
func materialize(cache string, g *group, moved map[string]string) error {
	dest := filepath.Join(cache, "m", g.hash)
	if _, err := os.Stat(filepath.Join(dest, "go.mod")); err == nil {
		touch(dest)
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(cache, "m"), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, p := range g.pkgs {
		if err := copyPackage(p, filepath.Join(tmp, filepath.FromSlash(relPath(p, g.mod))), moved); err != nil {
			return err
		}
	}
	goMod := "module " + g.newPath + "\n"
	if g.mod.GoVersion != "" {
		goMod += "\ngo " + g.mod.GoVersion + "\n"
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(goMod), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		if _, statErr := os.Stat(filepath.Join(dest, "go.mod")); statErr == nil {
			return nil // another build wrote the same content first
		}
		return err
	}
	return nil
}

// copyPackage copies p's files into dir, rewriting the Go sources' imports
// and refusing assembly that names a relocated package.
func copyPackage(p *pkg, dir string, moved map[string]string) error {
	goFiles := map[string]bool{}
	for _, f := range p.GoFiles {
		goFiles[f] = true
	}
	sFiles := map[string]bool{}
	for _, f := range p.SFiles {
		sFiles[f] = true
	}
	for _, name := range copied(p) {
		src := filepath.Join(p.Dir, name)
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		switch {
		case goFiles[name]:
			if data, err = rewrite(src, data, moved, p.ImportPath); err != nil {
				return err
			}
		case sFiles[name]:
			if q := namedInAssembly(data, moved); q != "" {
				return &Refusal{Package: p.ImportPath, Where: src,
					Reason: "its assembly names a symbol of package " + q + ", whose path relocation changes",
					Fix:    "call that package's function from Go instead, or build the module for the wasm or process transport"}
			}
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// relPath is p's directory in its module, slash-separated ("" for the root).
func relPath(p *pkg, m *module) string {
	return strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, m.Path), "/")
}

// namedInAssembly returns a relocated package whose symbols an assembly
// file names (`path·sym`, with / spelt ∕ or /), or "".
func namedInAssembly(src []byte, moved map[string]string) string {
	s := string(src)
	if !strings.Contains(s, "·") {
		return ""
	}
	for old := range moved {
		if strings.Contains(s, old+"·") || strings.Contains(s, strings.ReplaceAll(old, "/", "∕")+"·") {
			return old
		}
	}
	return ""
}

var (
	majorSuffix = regexp.MustCompile(`/v([2-9]|[1-9][0-9]+)$`)
	semver      = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
)

// version is the version a relocated module is required at: its original
// version when the go command accepts it for the new path (so build info
// still tells which version of the dependency an artifact carries), else
// v0.0.0, or vN.0.0 for a path that ends in /vN (the go command checks that
// the two agree).
func version(newPath, orig string) string {
	major := "v0"
	if m := majorSuffix.FindStringSubmatch(newPath); m != nil {
		major = "v" + m[1]
	}
	if m := semver.FindStringSubmatch(orig); m != nil {
		if got := "v" + m[1]; got == major || (major == "v0" && got == "v1") {
			return orig
		}
	}
	if major == "v0" {
		return "v0.0.0"
	}
	return major + ".0.0"
}

// buildDir writes the build directory: a go.mod requiring every relocated
// module (replaced by its cached copy) and the sdk as the original module
// resolves it, and the main package with its imports rewritten, placed
// where its relocated module's path makes internal/ imports valid.
func buildDir(cache string, main *pkg, sdk *module, groups map[string]*group, moved map[string]string, o Options) (res *Result, err error) {
	if err := os.MkdirAll(filepath.Join(cache, "b"), 0o700); err != nil {
		return nil, err
	}
	top, err := os.MkdirTemp(filepath.Join(cache, "b"), ".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(top) // gone once renamed
	// The main package goes to <top>/<hash of its module>/<module path>/<dir
	// in the module>: its import path, as far as internal/ is concerned, then
	// starts like its module's relocated packages.
	mm := main.Module
	rel, err := filepath.Rel(mm.Dir, main.Dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = "."
	}
	mainHash := "main"
	if g := groups[mm.Path]; g != nil {
		mainHash = g.hash
	}
	inTop := filepath.Join(mainHash, filepath.FromSlash(mm.Path), rel)
	if err := copyPackage(main, filepath.Join(top, inTop), moved); err != nil {
		return nil, err
	}

	goVersion := mm.GoVersion
	var b strings.Builder
	var paths []string
	for p, g := range groups {
		paths = append(paths, p)
		if later(g.mod.GoVersion, goVersion) {
			goVersion = g.mod.GoVersion
		}
	}
	sort.Strings(paths)
	fmt.Fprintf(&b, "module %s\n\n", Prefix)
	if goVersion != "" {
		fmt.Fprintf(&b, "go %s\n\n", goVersion)
	}
	for _, p := range paths {
		g := groups[p]
		fmt.Fprintf(&b, "require %s %s\nreplace %s => %s\n", g.newPath, version(g.newPath, g.mod.Version), g.newPath, filepath.Join(cache, "m", g.hash))
	}
	if sdk != nil {
		v := sdk.Version
		if v == "" {
			v = "v0.0.0"
		}
		fmt.Fprintf(&b, "require %s %s\n", SDK, v)
		switch r := sdk.Replace; {
		case r != nil && r.Version == "", r == nil && sdk.Version == "" && sdk.Dir != "":
			// A directory: replaced, or a module of the workspace.
			fmt.Fprintf(&b, "replace %s => %s\n", SDK, sdk.Dir)
		case r != nil:
			fmt.Fprintf(&b, "replace %s => %s %s\n", SDK, r.Path, r.Version)
		}
	}
	if err := os.WriteFile(filepath.Join(top, "go.mod"), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	// The original go.sum vouches for the sdk when it comes from the module
	// cache; relocated modules are directories and need no sums.
	if sum, err := os.ReadFile(filepath.Join(mm.Dir, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(top, "go.sum"), sum, 0o644); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// Content-addressed too: an unchanged main package compiles from the same
	// directory, and the go build cache has it.
	sum, err := hashDir(top)
	if err != nil {
		return nil, err
	}
	dest := filepath.Join(cache, "b", sum)
	if err := os.Rename(top, dest); err != nil {
		if _, statErr := os.Stat(filepath.Join(dest, "go.mod")); statErr != nil {
			return nil, err
		}
		touch(dest) // there already, identical
	}
	return &Result{Dir: filepath.Join(dest, inTop), Files: o.Files, Moved: moved}, nil
}

// hashDir hashes the names and contents of the files under dir.
func hashDir(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "file %q %d\n", filepath.ToSlash(rel), len(data))
		h.Write(data)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:hashLen], err
}

// touch marks a cache entry as used now: trim keeps it.
func touch(dir string) {
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
}

// MaxAge is how long a relocated module or build directory stays in the
// cache unused; Prepare removes older ones.
const MaxAge = 30 * 24 * time.Hour

// tmpMaxAge: a temporary directory this old belongs to a build that died.
const tmpMaxAge = time.Hour

// trim removes cache entries unused for MaxAge, and temporary directories
// left by builds that died. Errors are ignored: the cache only grows.
func trim(cache string, now time.Time) {
	for _, sub := range []string{"m", "b"} {
		entries, _ := os.ReadDir(filepath.Join(cache, sub))
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue
			}
			age := now.Sub(info.ModTime())
			if age > MaxAge || (strings.HasPrefix(e.Name(), ".tmp-") && age > tmpMaxAge) {
				os.RemoveAll(filepath.Join(cache, sub, e.Name()))
			}
		}
	}
}

// later reports whether go version a is later than b ("1.22" < "1.22.3" < "1.23").
func later(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			fmt.Sscan(pa[i], &x)
		}
		if i < len(pb) {
			fmt.Sscan(pb[i], &y)
		}
		if x != y {
			return x > y
		}
	}
	return false
}
