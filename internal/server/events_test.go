package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// GET /v1/events streams each lifecycle event as it happens, in order, as
// Server-Sent Events.
func TestEventStream(t *testing.T) {
	h, reg := newAPI(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Scan() // the opening comment: the subscription is in place once it is sent
	if !strings.HasPrefix(sc.Text(), ":") {
		t.Fatalf("the stream starts with %q", sc.Text())
	}
	m := sdk.New("lab", "1.0.0").Handle("ok", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
	if _, err := reg.Register(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := reg.Unload(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	want := []string{"None → Loaded", "Loaded → Validated", "Validated → Active", "Active → Draining", "Draining → Unloaded"}
	var got []string
	var ids []string
	for len(got) < len(want) && sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, id)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var e hotmod.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if e.Module != "lab" || e.Version != "1.0.0" || e.Transport != hotmod.Builtin {
			t.Errorf("event %s", data)
		}
		got = append(got, e.From.String()+" → "+e.To.String())
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") || strings.Join(ids, " ") != "1 2 3 4 5" {
		t.Errorf("events %q (ids %v), want %q", got, ids, want)
	}
}
