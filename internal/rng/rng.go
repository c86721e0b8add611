// Package rng holds reel's seeding: the PCG generator every seeded stream uses and the
// splitmix64 finaliser that derives one seed from others. It lives on its own so that the
// synthetic generators (package data), the LeRobot sampler (package lerobot) and the tasks draw
// the same streams from the same seeds without importing one another.
package rng

import "math/rand/v2"

// New returns a PCG-backed *rand.Rand seeded from seed.
func New(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Mix64 is the splitmix64 finaliser: a bijective hash of x.
func Mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
