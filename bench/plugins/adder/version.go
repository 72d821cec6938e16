package main

// version is the module's version; the harness writes copies of this
// package with other versions (see cmd/compare/build.go).
const version = "1.0.0"
