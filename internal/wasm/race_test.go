//go:build race

package wasm_test

// raceEnabled: wazero's compiler, instrumented, compiles about 30 times
// slower; a test that must compile from scratch skips.
const raceEnabled = true
