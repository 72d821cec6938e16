package build_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkNativeBuild measures `hotmod build --transport native` of a module
// with packages of its own and a dependency (testdata/reloc/rules, or the
// module in HOTMOD_BENCH_MODULE, whose HOTMOD_BENCH_EDIT file is the
// subpackage edited), with and without relocation:
//
//   - warm: nothing changed since the last build;
//
//   - edit-main: main.go changed (the module's other packages did not);
//
//   - edit-subpackage: a file of a subpackage changed;
//
//   - new-paths (relocation only): every relocated package compiled anew, as
//     after a change in a dependency that everything imports;
//
//   - cold (only with HOTMOD_BENCH_COLD=1: minutes): an empty Go build cache
//     and an empty relocation cache, the standard library compiled too.
//
//     go test -run '^$' -bench NativeBuild -benchtime 3x ./internal/build/
func BenchmarkNativeBuild(b *testing.B) {
	dir, edit := os.Getenv("HOTMOD_BENCH_MODULE"), os.Getenv("HOTMOD_BENCH_EDIT")
	if dir == "" {
		dir, edit = rulesModule(b, "dep-v1", "1.0.0"), filepath.Join("logic", "logic.go")
	}
	// Every edit adds a constant of a new name (also across runs on the
	// same HOTMOD_BENCH_MODULE).
	n := time.Now().UnixNano()
	appendTo := func(b *testing.B, file string) {
		n++
		text := fmt.Sprintf("\nconst edited%d = %d\n", n, n)
		f, err := os.OpenFile(filepath.Join(dir, file), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			b.Fatal(err)
		}
	}
	for _, noRelocate := range []bool{false, true} {
		name := fmt.Sprintf("relocate=%v", !noRelocate)
		cache := b.TempDir()
		env := "GOCACHE=" + os.Getenv("GOCACHE") // "" is the default: the shared, warm cache
		if os.Getenv("HOTMOD_BENCH_COLD") == "1" {
			env = "GOCACHE=" + b.TempDir() // the cold runs' cache warms up for the rest
			b.Run(name+"/cold", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					gocache, cache := b.TempDir(), b.TempDir()
					b.StartTimer()
					buildReloc(b, dir, "", cache, noRelocate, "GOCACHE="+gocache)
				}
			})
		}
		buildReloc(b, dir, "", cache, noRelocate, env) // fill the caches
		b.Run(name+"/warm", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				buildReloc(b, dir, "", cache, noRelocate, env)
			}
		})
		b.Run(name+"/edit-main", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				appendTo(b, "main.go")
				buildReloc(b, dir, "", cache, noRelocate, env)
			}
		})
		if !noRelocate {
			// What a new version of a dependency costs: every relocated
			// package compiled anew (an empty relocation cache gives them all
			// new paths), the standard library from the go build cache.
			b.Run(name+"/new-paths", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					cache := b.TempDir()
					b.StartTimer()
					buildReloc(b, dir, "", cache, noRelocate, env)
				}
			})
		}
		if edit != "" {
			b.Run(name+"/edit-subpackage", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					appendTo(b, edit)
					buildReloc(b, dir, "", cache, noRelocate, env)
				}
			})
		}
	}
}
