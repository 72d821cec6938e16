package stages

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestRecorder(t *testing.T) {
	var none *Recorder // records nothing, and says so
	none.Add(Read, time.Second)
	if none.Stages() != nil || From(context.Background()) != nil {
		t.Fatal("a nil recorder recorded")
	}
	r := new(Recorder)
	ctx := With(context.Background(), r)
	start := time.Now().Add(-time.Millisecond)
	next := From(ctx).Since(Read, start)
	From(ctx).Add(Compile, 1500*time.Millisecond)
	got := r.Stages()
	if len(got) != 2 || got[0].Name != Read || got[0].Duration < time.Millisecond || !next.After(start) || got[1] != (Stage{Compile, 1500 * time.Millisecond}) {
		t.Fatalf("stages %v", got)
	}
	b, err := json.Marshal(got[1])
	if err != nil || string(b) != `{"stage":"compile","seconds":1.5}` {
		t.Fatalf("JSON %s, %v", b, err)
	}
	var back Stage
	if err := json.Unmarshal(b, &back); err != nil || back != got[1] {
		t.Fatalf("read back %v, %v", back, err)
	}
}
