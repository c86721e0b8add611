//go:build !linux

package lerobot

// adviseHugePages does nothing where transparent huge pages are not Linux's.
func adviseHugePages([]byte) {}
