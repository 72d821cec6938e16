// Package dep stands for a third-party dependency at version 2.
package dep

// Version is what this copy answers.
const Version = "dep v2"

// Double doubles x, another way.
func Double(x int64) int64 { return x + x }
