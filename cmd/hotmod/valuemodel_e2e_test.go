package main

import (
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestOutsideValueModelOverHTTP serves the module of
// plugintest.OutsideModelSource on every artifact transport from one real
// `hotmod serve` (named shapes_native, shapes_wasm, shapes_process) and calls
// it over HTTP: an []int or a time.Time in a dynamic result is the same
// module_error with the same message on each, naming the field path and the
// Go type; sdk.ToParams's conversion of them answers alike on each.
func TestOutsideValueModelOverHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules and starts the daemon; skipped with -short")
	}
	dir := t.TempDir()
	transports := []string{"native", "wasm", "process"}
	for _, transport := range transports {
		mainGo := strings.Replace(plugintest.OutsideModelSource(), `sdk.New("shapes"`, `sdk.New("shapes_`+transport+`"`, 1)
		if !strings.Contains(mainGo, `"shapes_`+transport+`"`) {
			t.Fatal(`plugintest.OutsideModelSource no longer says sdk.New("shapes": rename the module another way`)
		}
		src := plugintest.Source(t, mainGo)
		mustRun(t, nil, "build", "--transport", transport, "-o", dir, src)
	}
	d := startDaemon(t, dir)
	d.waitModules(t, "shapes active on every transport", func(mods []hotmod.ModuleInfo) bool {
		for _, transport := range transports {
			if find(mods, active("shapes_"+transport, "1.0.0")) == nil {
				return false
			}
		}
		return true
	})
	call := func(module, method string) (status int, body []byte) {
		t.Helper()
		resp, err := d.request(t, "POST", "/v1/invoke/"+module+"/"+method, `{}`)
		if err != nil {
			t.Fatalf("%s.%s: %v", module, method, err)
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	for _, transport := range transports {
		module := "shapes_" + transport
		for method, want := range plugintest.OutsideModelErrors {
			status, body := call(module, method)
			var got struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			code, message, _ := strings.Cut(want, ": ")
			if err := json.Unmarshal(body, &got); err != nil || status != 500 || got.Error.Code != code || got.Error.Message != message {
				t.Errorf("%s.%s over HTTP: %d %s\nwant 500 with code %s and message %q", module, method, status, body, code, message)
			}
		}
		status, body := call(module, "converted")
		var got map[string]any
		want := map[string]any{"xs": []any{1.0, 2.0, 3.0}, "at": "1970-01-01T00:00:00.000000000Z"}
		if err := json.Unmarshal(body, &got); err != nil || status != 200 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s.converted over HTTP: %d %s", module, status, body)
		}
	}
}
