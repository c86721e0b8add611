// Package archtest holds the test that enforces reel's import rules (docs/architecture.md): the
// layers its packages form, the imports that must never appear, and a cmd/reel that starts no
// goroutines. It has no code of its own.
package archtest
