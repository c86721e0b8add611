// Package version is reel's version string: what `reel serve` reports as harness_version in its
// vla-eval hello replies and writes into evaluation results.
package version

// Version is reel's release version (semantic versioning).
const Version = "0.4.0"

// String is Version as reel names itself to other programs ("reel 0.4.0").
func String() string { return "reel " + Version }
