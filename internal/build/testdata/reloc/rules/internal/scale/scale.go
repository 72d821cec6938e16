// Package scale is internal to the module.
package scale

// Factor multiplies every input.
const Factor = 1

// By scales x.
func By(x int64) int64 { return Factor * x }
