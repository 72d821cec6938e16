package plugintest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goGetTimeout bounds Require's `go get` (which may download from the
// module proxy).
const goGetTimeout = 2 * time.Minute

// requireExamplesDeps makes the module in dir require what examples/go.mod
// requires (but the sdk, which dir's go.mod already replaces) and copies
// examples/go.sum beside it.
func requireExamplesDeps(t testing.TB, dir string) {
	t.Helper()
	examples := filepath.Join(Repo(t), "examples")
	goMod, err := os.ReadFile(filepath.Join(examples, "go.mod"))
	if err != nil {
		t.Fatalf("plugintest: %v", err)
		return
	}
	var requires []string
	inBlock := false
	for _, line := range strings.Split(string(goMod), "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "require" && f[1] == "(":
			inBlock = true
			continue
		case inBlock && len(f) == 1 && f[0] == ")":
			inBlock = false
			continue
		case len(f) == 3 && f[0] == "require":
			f = f[1:]
		case !inBlock || len(f) != 2:
			continue
		}
		if f[0] != sdkModule {
			requires = append(requires, f[0]+" "+f[1])
		}
	}
	if len(requires) == 0 {
		return
	}
	sum, err := os.ReadFile(filepath.Join(examples, "go.sum"))
	if err != nil {
		t.Fatalf("plugintest: examples/go.mod requires %v but: %v", requires, err)
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, "go.mod"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString("\nrequire (\n\t" + strings.Join(requires, "\n\t") + "\n)\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
	}
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
}

// Edit applies edits, pairs of old and new strings, to the file at rel
// inside dir (a module Example or Source made): every occurrence of old is
// replaced, and an old string the file lacks fails the test.
//
//	plugintest.Edit(t, dir, "logic/logic.go", "MaxCached = 512", "MaxCached = 64")
func Edit(t testing.TB, dir, rel string, edits ...string) {
	t.Helper()
	if len(edits)%2 != 0 {
		t.Fatalf("plugintest.Edit(%q): edits come in old,new pairs; got %d strings", rel, len(edits))
		return
	}
	if len(edits) == 0 {
		return
	}
	path := filepath.Join(dir, rel)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
		return
	}
	for i := 0; i < len(edits); i += 2 {
		if !bytes.Contains(data, []byte(edits[i])) {
			t.Fatalf("plugintest: %s does not contain %q", rel, edits[i])
			return
		}
		data = bytes.ReplaceAll(data, []byte(edits[i]), []byte(edits[i+1]))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("plugintest: %v", err)
	}
}

// Require makes the module in dir require module at version (`go get
// module@version`, which may download it from the module proxy), e.g. to
// build a version of an example against another release of a dependency.
func Require(t testing.TB, dir, module, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), goGetTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "get", module+"@"+version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plugintest: go get %s@%s in %s: %v\n%s", module, version, dir, err, out)
	}
}
