package guard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hotmod/hotmod/internal/guard"
	"github.com/hotmod/hotmod/sdk"
)

// The registry makes the standard guards once, and when it activates a
// version it builds that version's chain around its Invoke and keeps the
// chain and the Stats.
func Example() {
	guards := guard.Standard(guard.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Deadline: guard.DeadlineConfig{
			OnPileUp: func(info guard.Info, lingering int64) {
				// The registry quarantines info.Module@info.Version here.
			},
		},
	})

	mod := sdk.New("faulty", "1.0.0").
		Handle("fail", func(context.Context, map[string]any) (map[string]any, error) {
			return nil, errors.New("failing on purpose")
		})
	stats := new(guard.Stats)
	info := guard.Info{Module: "faulty", Version: "1.0.0", Transport: "builtin", Manifest: mod.Manifest(), Stats: stats}
	call := guard.Chain(info, mod.Invoke, guards...)

	for i := 0; i < 4; i++ {
		_, err := call(context.Background(), "fail", nil)
		fmt.Println(sdk.CodeOf(err))
	}
	snap := stats.Snapshot()
	fmt.Println(snap.Breaker, snap.Calls, snap.Failures, snap.ShortCircuited)
	// Output:
	// module_error
	// module_error
	// module_error
	// circuit_open
	// open 3 3 1
}
