// Package integration tests hotmod end to end with real native plugins that
// the tests build themselves, some with other toolchains and flags on
// purpose. These tests cannot run under -race (see RATIONALE.md).
package integration
