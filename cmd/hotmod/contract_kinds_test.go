package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// TestContractAndInspectEveryKind builds pricing for every transport and
// runs the real `hotmod contract export`, `contract diff` and `inspect` on
// each artifact kind: NAME.so, NAME.wasm, NAME.process and a
// NAME.process.json launch file. Each reads the same manifest, by the
// loader of its kind; a launch file obeys --allow-command as serve does.
func TestContractAndInspectEveryKind(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules; skipped with -short")
	}
	src := plugintest.Example(t, "pricing")
	dir := t.TempDir()
	built := map[string]string{}
	for _, transport := range []string{"native", "wasm", "process"} {
		r := mustRun(t, nil, "build", "--transport", transport, "-o", dir, src)
		built[transport] = strings.TrimSpace(r.stdout)
	}
	// A launch file starting a program in its own directory needs no
	// --allow-command.
	launchDir := t.TempDir()
	exe, err := os.ReadFile(built["process"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(launchDir, "pricing-program"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	built["launch file"] = filepath.Join(launchDir, "pricing.process.json")
	if err := os.WriteFile(built["launch file"], []byte(`{"command": "./pricing-program"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	exported := map[string]sdk.Manifest{}
	for _, kind := range []string{"native", "wasm", "process", "launch file"} {
		r := mustRun(t, nil, "contract", "export", built[kind])
		man, err := sdk.ParseManifest([]byte(r.stdout))
		if err != nil || man.Name != "pricing" || man.Version != "1.1.0" || len(man.Methods) == 0 || man.Methods[0].Fingerprint == "" {
			t.Fatalf("contract export of the %s artifact: %v\n%s", kind, err, r)
		}
		exported[kind] = man
		var in inspection
		r = mustRun(t, nil, "inspect", "--json", built[kind])
		if err := json.Unmarshal([]byte(r.stdout), &in); err != nil || !in.Loadable || in.Manifest == nil ||
			!reflect.DeepEqual(in.Manifest.Methods, man.Methods) {
			t.Fatalf("inspect of the %s artifact: %v\n%s", kind, err, r)
		}
		if want := map[string]string{"launch file": "process"}[kind]; want != "" && in.Transport != want || want == "" && in.Transport != kind {
			t.Errorf("inspect calls the %s artifact's transport %q", kind, in.Transport)
		}
	}
	for _, kind := range []string{"wasm", "process", "launch file"} {
		if !reflect.DeepEqual(exported[kind].Methods, exported["native"].Methods) {
			t.Errorf("the %s artifact's manifest differs from the native one's:\n%+v\n%+v", kind, exported[kind].Methods, exported["native"].Methods)
		}
	}
	// diff across kinds: the same contract, so the same version passes.
	manifest := filepath.Join(t.TempDir(), "pricing.manifest.json")
	if err := os.WriteFile(manifest, []byte(mustRun(t, nil, "contract", "export", built["wasm"]).stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "contract", "diff", manifest, built["launch file"])
	mustRun(t, nil, "contract", "diff", built["native"], built["process"])

	// inspect judges a wasm module's needs against --wasm-grant, as serve
	// would: a module that needs the clock is not loadable where it is denied.
	clocked := plugintest.Example(t, "pricing", `sdk.New("pricing", version).`, `sdk.New("pricing", version).Needs(sdk.NeedClock).`)
	needsClock := strings.TrimSpace(mustRun(t, nil, "build", "--transport", "wasm", "-o", t.TempDir(), clocked).stdout)
	mustRun(t, nil, "inspect", needsClock)
	if r := hotmodRun(t, nil, "", "inspect", "--wasm-grant=-clock", needsClock); r.code != 1 || !strings.Contains(r.stderr, "clock") {
		t.Errorf("inspect --wasm-grant=-clock of a module that needs the clock: %s", r)
	}

	// A launch file starting a program outside its directory: refused
	// until the program is allowed, as serve refuses it.
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed: the allow-list part needs it")
	}
	py := filepath.Join(plugintest.Repo(t), "examples", "python", "textstats.process.json")
	for _, args := range [][]string{{"contract", "export", py}, {"contract", "diff", py, py}} {
		if r := hotmodRun(t, nil, "", args...); r.code != 1 || !strings.Contains(r.stderr, "--allow-command python3") {
			t.Errorf("%s without --allow-command: %s", strings.Join(args, " "), r)
		}
		if r := hotmodRun(t, nil, "", append(args, "--allow-command", "python3")...); r.code != 0 {
			t.Errorf("%s --allow-command python3: %s", strings.Join(args, " "), r)
		}
	}
}
