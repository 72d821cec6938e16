package sdk

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestHammerTyped calls typed methods from many goroutines on both entry
// points while plans for new types are being built: run it under -race.
func TestHammerTyped(t *testing.T) {
	m := adder()
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				a, b := int64(g), int64(i)
				out, err := m.Invoke(ctx, "add", map[string]any{"a": a, "b": b})
				if err != nil || out["sum"] != a+b {
					t.Errorf("Invoke: %v %v", out, err)
					return
				}
				raw, err := m.InvokeCBOR(ctx, "add", mustCBOR(t, map[string]any{"a": a, "b": b}))
				if err != nil {
					t.Errorf("InvokeCBOR: %v", err)
					return
				}
				if sum, err := DecodeCBOR[addOut](raw); err != nil || sum.Sum != a+b {
					t.Errorf("InvokeCBOR: %v %v", sum, err)
					return
				}
				if _, err := Decode[order](with("tags", []any{fmt.Sprint(i)})); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
