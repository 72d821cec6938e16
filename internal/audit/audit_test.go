package audit_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/audit"
	"github.com/hotmod/hotmod/sdk"
)

func TestFollow(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	reg := hotmod.New(hotmod.WithLogger(slog.New(slog.DiscardHandler)))
	events, _ := reg.Subscribe()
	f := audit.Follow(events, logger)
	if _, err := reg.Register(context.Background(), sdk.New("greeter", "1.0.0").
		Handle("hello", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })); err != nil {
		t.Fatal(err)
	}
	f.As(audit.Shutdown)
	if err := reg.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Wait()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`msg=audit action=load actor=directory module=greeter version=1.0.0`,
		`msg=audit action=unload actor=shutdown module=greeter version=1.0.0`,
	}
	if len(lines) != len(want) {
		t.Fatalf("audit records:\n%s", buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("record %d: %s, want %s", i, lines[i], w)
		}
	}
}

func TestLogCarriesTheActor(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	audit.Log(audit.WithActor(context.Background(), "ci"), logger, "token create", slog.String("token", "x"))
	audit.Log(context.Background(), logger, "unload")
	if !strings.Contains(buf.String(), "msg=audit action=\"token create\" actor=ci token=x") || !strings.Contains(buf.String(), "action=unload actor=unknown") {
		t.Errorf("log:\n%s", buf.String())
	}
}
