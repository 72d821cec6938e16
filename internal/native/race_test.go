//go:build race

package native

// raceEnabled: the test binary runs the race detector, so the plugins that
// plugintest builds for it are race-instrumented too (and load fine).
const raceEnabled = true
