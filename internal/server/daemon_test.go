package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/server"
)

func TestDaemonEndpoints(t *testing.T) {
	reg := hotmod.New(hotmod.WithCacheDir(t.TempDir()), hotmod.WithStateDir(filepath.Join(t.TempDir(), "state")))
	defer reg.Close(context.Background())
	ready := false
	var recycled []string
	d := server.Daemon{
		Ready: func() (bool, string) { return ready, "loading the modules of /srv" },
		Recycle: func(why string) error {
			recycled = append(recycled, why)
			if len(recycled) > 1 {
				return errors.New("the supervisor is gone")
			}
			return nil
		},
	}
	srv := httptest.NewServer(server.New(reg, nil, server.WithoutAuth(), server.WithDaemon(reg, d)))
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		before             func()
		method, path, body string
		status             int
		want               string
	}{
		{nil, "GET", "/readyz", "", 503, `"reason":"loading the modules of /srv"`},
		{func() { ready = true }, "GET", "/readyz", "", 200, `"status":"ready"`},
		{nil, "POST", "/readyz", "", 405, "method_not_allowed"},
		{nil, "POST", "/v1/recycle", "", 202, `"status":"recycling"`},
		{nil, "POST", "/v1/recycle", "", 500, "the supervisor is gone"},
		{nil, "GET", "/v1/quarantine", "", 200, `{"quarantined":[]}`},
		{nil, "POST", "/v1/quarantine/lift", `{}`, 400, "target"},
		{nil, "POST", "/v1/quarantine/lift", `{"target":"0123456789ab"}`, 404, "nothing is quarantined"},
		{nil, "GET", "/healthz", "", 200, `"ok"`},
		{nil, "GET", "/v1/modules", "", 200, `"modules"`},
	}
	for _, c := range cases {
		if c.before != nil {
			c.before()
		}
		status, body := do(c.method, c.path, c.body)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s: %d %s, want %d with %s", c.method, c.path, c.body, status, body, c.status, c.want)
		}
	}
}
