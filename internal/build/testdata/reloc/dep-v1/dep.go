// Package dep stands for a third-party dependency at version 1.
package dep

// Version is what this copy answers.
const Version = "dep v1"

// Double doubles x.
func Double(x int64) int64 { return 2 * x }
