package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"

	"github.com/hotmod/hotmod/sdk"
	"github.com/spf13/cobra"
)

const sdkModule = "github.com/hotmod/hotmod/sdk"

func newCmd() *cobra.Command {
	var dir, sdkDir string
	cmd := &cobra.Command{
		Use:   "new NAME [--dir DIR]",
		Short: "Start a module that builds and loads as it is",
		Long: `new writes a module NAME@0.1.0 with one method, hello, into DIR (default
./NAME): main.go and a go.mod that requires the hotmod SDK.

The SDK is not published, and a native module must be built against exactly
the SDK sources this hotmod was built from, so go.mod replaces the SDK with
that directory: the one recorded in this binary, or --sdk / $HOTMOD_SDK.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name := a[0]
			probe := sdk.New(name, "0.1.0").Handle("hello", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
			if err := probe.Validate(); err != nil {
				return usagef("%s", sdk.AsError(err).Message)
			}
			if dir == "" {
				dir = name
			}
			src, err := findSDK(sdkDir)
			if err != nil {
				return err
			}
			if err := scaffold(dir, name, src); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), `created %s: module %s@0.1.0 (main.go, go.mod; SDK from %s)
next:
  hotmod build -o ./plugins %s          # into the directory hotmod serve watches
  hotmod invoke %s hello '{"name":"Ada"}'
`, dir, name, src, dir, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to create (default ./NAME); it must not exist or be empty")
	cmd.Flags().StringVar(&sdkDir, "sdk", "", "the SDK source directory (default $HOTMOD_SDK, else the one this hotmod was built from)")
	return cmd
}

// findSDK returns the SDK source directory: flag, else $HOTMOD_SDK, else
// where this binary's copy of package sdk was compiled from.
func findSDK(flag string) (string, error) {
	dir, from := flag, "--sdk"
	if dir == "" {
		dir, from = os.Getenv("HOTMOD_SDK"), "HOTMOD_SDK"
	}
	if dir == "" {
		pc := reflect.ValueOf(sdk.New).Pointer()
		file, _ := runtime.FuncForPC(pc).FileLine(pc)
		if !filepath.IsAbs(file) {
			return "", errors.New("this hotmod binary was built with -trimpath, so it does not know where its SDK sources are: " +
				"pass --sdk DIR or set HOTMOD_SDK to the sdk directory of the hotmod source tree it was built from")
		}
		dir, from = filepath.Dir(file), "the SDK directory this hotmod was built from"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if mod, err := modulePath(filepath.Join(abs, "go.mod")); err != nil || mod != sdkModule {
		return "", fmt.Errorf("%s (%s) does not hold the hotmod SDK (want a go.mod of module %s): "+
			"pass --sdk DIR or set HOTMOD_SDK to the sdk directory of the hotmod source tree this binary was built from", abs, from, sdkModule)
	}
	return abs, nil
}

// modulePath reads the module line of a go.mod file.
func modulePath(goMod string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`), nil
		}
	}
	return "", fmt.Errorf("%s has no module line", goMod)
}

// scaffold writes the module into dir, which must not exist or be empty.
func scaffold(dir, name, sdkDir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return fmt.Errorf("%s already exists and is not empty: pick another directory with --dir, or remove it", dir)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"go.mod":  fmt.Sprintf(goModTemplate, name, sdkModule, sdkModule, goModPath(sdkDir)),
		"main.go": strings.ReplaceAll(mainTemplate, "NAME", name),
	}
	for f, text := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// goModPath quotes a directory for go.mod when it needs it.
func goModPath(dir string) string {
	if strings.ContainsAny(dir, " \t\"'`\\") {
		return strconv.Quote(dir)
	}
	return dir
}

const goModTemplate = `module example.com/%s

go 1.22

require %s v0.0.0

// The SDK is not published, and a native module must be built against
// exactly the SDK sources of the hotmod that loads it.
replace %s => %s
`

const mainTemplate = `// Command NAME is a hotmod module.
//
//	hotmod build -o ./plugins .
//	hotmod invoke NAME hello '{"name":"Ada"}'  →  {"message":"hello, Ada"}
package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

// version is the one place NAME's version is set. A running hotmod swaps in
// a new build only when the version changes.
const version = "0.1.0"

// Module is the symbol hotmod looks up in the built artifact.
var Module = sdk.New("NAME", version).
	Handle("hello", hello, sdk.Doc(` + "`" + `{"name": string} → {"message": "hello, <name>"}` + "`" + `))

func hello(_ context.Context, p map[string]any) (map[string]any, error) {
	name, err := sdk.String(p, "name")
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": "hello, " + name}, nil
}

func main() { sdk.Main(Module) }
`
