package hotmod_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// readmeGoMod returns the go.mod lines the README tells another module to
// add (the go block under "### Using hotmod from your own module"), the
// checkout's path ../hotmod there replaced by repo.
func readmeGoMod(t *testing.T, repo string) string {
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Using hotmod from your own module\n")
	_, block, ok2 := strings.Cut(section, "```\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 || !strings.Contains(block, "replace ") {
		t.Fatal(`README.md has no go.mod lines under "### Using hotmod from your own module"`)
	}
	return strings.ReplaceAll(block, "../hotmod", repo)
}

// hostMain is a host program of another module: it compiles a module into
// the registry and calls it.
const hostMain = `package main

import (
	"context"
	"fmt"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

func main() {
	ctx := context.Background()
	reg := hotmod.New()
	defer reg.Close(ctx)
	greeter := sdk.New("greeter", "1.0.0").Handle("hello", func(_ context.Context, p map[string]any) (map[string]any, error) {
		return map[string]any{"message": "hello, " + p["name"].(string)}, nil
	})
	if _, err := reg.Register(ctx, greeter); err != nil {
		panic(err)
	}
	out, err := reg.Invoke(ctx, "greeter", "hello", map[string]any{"name": "Ada"})
	fmt.Println(out["message"], err)
}
`

// TestUseFromAnotherModule makes a module outside the repository that
// imports github.com/hotmod/hotmod with exactly the go.mod lines the README
// states, builds it and runs it. hotmod's dependencies come from the module cache or, when it
// lacks them, from GOPROXY; the test skips, saying so, when neither has them.
func TestUseFromAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program with the go command; skipped with -short")
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Dir(file)
	dir := t.TempDir()
	goMod := "module example.com/host\n\ngo 1.25.0\n\n" + readmeGoMod(t, repo)
	// hotmod's go.sum holds its dependencies' sums: the new module starts
	// with them instead of asking the checksum database.
	sums, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"go.mod": goMod, "go.sum": string(sums), "main.go": hostMain} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := func(proxy string) (string, error) {
		cmd := exec.Command("go", "build", "-o", "host", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY="+proxy)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The module cache first; then the proxy the environment names.
	if out, err := build("off"); err != nil {
		proxy := os.Getenv("GOPROXY")
		if proxy == "" {
			proxy = "https://proxy.golang.org,direct"
		}
		if out2, err := build(proxy); err != nil {
			if strings.Contains(out, "GOPROXY=off") && unreachable(out2) {
				t.Skipf("hotmod's dependencies are neither in the module cache nor reachable through GOPROXY=%s:\n%s", proxy, out2)
			}
			t.Fatalf("go build of a module using hotmod with the README's replace lines:\n%s\n%s", goMod, out2)
		}
	}
	cmd := exec.Command(filepath.Join(dir, "host"))
	out, err := cmd.Output() // the registry logs to stderr
	if err != nil || strings.TrimSpace(string(out)) != "hello, Ada <nil>" {
		t.Fatalf("the host program: %v\n%s", err, out)
	}
}

// unreachable says whether the go command's output is about a network
// that is not there (or a proxy turned off).
func unreachable(out string) bool {
	for _, s := range []string{"GOPROXY=off", "dial tcp", "no such host", "connection refused", "i/o timeout", "network is unreachable", "TLS handshake timeout"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}
