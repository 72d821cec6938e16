package journal

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestHostIDReadsTheBuildID(t *testing.T) {
	id := HostID()
	if len(id) < 20 {
		t.Fatalf("HostID() = %q: the test binary's Go build ID was not read", id)
	}
	if got := buildID(os.DevNull); got != "" {
		t.Errorf("buildID(%s) = %q, want \"\"", os.DevNull, got)
	}
}

func TestProofs(t *testing.T) {
	dir := stateDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Prove(dir, "aa11", "a", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := l.Proven("aa11", HostID()); !ok || p.Module != "a" || p.Version != "1.0.0" {
		t.Fatalf("Proven after Prove = %+v, %v", p, ok)
	}
	if _, ok := l.Proven("aa11", "another-build"); ok {
		t.Error("a proof made by one executable holds for another")
	}
	if _, ok := l.Proven("bb22", HostID()); ok {
		t.Error("bytes never run are proven")
	}

	// A strike (the process died with it among the suspects) drops the
	// proof, and a struck artifact is not proven again until it is judged.
	if _, err := Judge(dir, Verdict{Maybe: []Suspect{{Sum: "aa11", Path: "/m/a.so"}}}, Crash{}); err != nil {
		t.Fatal(err)
	}
	if err := Prove(dir, "aa11", "a", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if l, _ = Load(dir); len(l.Proofs) != 0 {
		t.Errorf("a struck artifact stays proven: %+v", l.Proofs)
	}

	// Quarantine drops it too.
	if err := Prove(dir, "cc33", "c", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := Judge(dir, Verdict{Sure: []Suspect{{Sum: "cc33", Path: "/m/c.so", Why: "it panicked"}}}, Crash{}); err != nil {
		t.Fatal(err)
	}
	if l, _ = Load(dir); l.Proofs["cc33"] != (Proof{}) {
		t.Errorf("a quarantined artifact stays proven: %+v", l.Proofs["cc33"])
	}
}

func TestProofsBounded(t *testing.T) {
	l := &List{}
	start := time.Now()
	for i := range MaxProven + 10 {
		l.prove(fmt.Sprintf("%04d", i), Proof{Host: "h", Since: start.Add(time.Duration(i) * time.Second)})
	}
	if len(l.Proofs) != MaxProven {
		t.Fatalf("%d proofs kept, want %d", len(l.Proofs), MaxProven)
	}
	if _, ok := l.Proofs["0000"]; ok {
		t.Error("the oldest proof was kept")
	}
	if _, ok := l.Proofs[fmt.Sprintf("%04d", MaxProven+9)]; !ok {
		t.Error("the newest proof was dropped")
	}
}
