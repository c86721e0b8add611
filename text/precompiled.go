package text

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// charsMap is SentencePiece's precompiled normalization map: a little-endian uint32 trie size in
// bytes, a Darts-clone double-array trie of that size mapping UTF-8 byte strings to offsets, then
// the NUL-terminated replacement strings (google/sentencepiece src/normalizer.cc,
// huggingface/spm_precompiled src/lib.rs).
type charsMap struct {
	array      []uint32
	normalized []byte
}

func parseCharsMap(b []byte) (*charsMap, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, errors.New("precompiled_charsmap: shorter than its 4-byte header")
	}
	size := int(binary.LittleEndian.Uint32(b))
	if size%4 != 0 || 4+size > len(b) || size == 0 {
		return nil, errors.New("precompiled_charsmap: trie size does not fit the data")
	}
	m := &charsMap{array: make([]uint32, size/4), normalized: b[4+size:]}
	for i := range m.array {
		m.array[i] = binary.LittleEndian.Uint32(b[4+4*i:])
	}
	if !utf8.Valid(m.normalized) {
		return nil, errors.New("precompiled_charsmap: replacement strings are not UTF-8")
	}
	return m, nil
}

func unitHasLeaf(u uint32) bool { return (u>>8)&1 == 1 }
func unitValue(u uint32) int    { return int(u & ((1 << 31) - 1)) }
func unitLabel(u uint32) uint32 { return u & ((1 << 31) | 0xFF) }
func unitOffset(u uint32) int   { return int((u >> 10) << ((u & (1 << 9)) >> 6)) }

// prefixes calls f(length, value) for each key that is a prefix of key, shortest first, until f
// returns false.
func (m *charsMap) prefixes(key string, f func(n, value int) bool) {
	pos := 0
	if len(m.array) == 0 {
		return
	}
	u := m.array[0]
	pos ^= unitOffset(u)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == 0 {
			return
		}
		pos ^= int(c)
		if pos < 0 || pos >= len(m.array) {
			return
		}
		u = m.array[pos]
		if unitLabel(u) != uint32(c) {
			return
		}
		pos ^= unitOffset(u)
		if pos < 0 || pos >= len(m.array) {
			return
		}
		if unitHasLeaf(u) {
			if !f(i+1, unitValue(m.array[pos])) {
				return
			}
		}
	}
}

func (m *charsMap) str(v int) string {
	if v < 0 || v > len(m.normalized) {
		return ""
	}
	e := v
	for e < len(m.normalized) && m.normalized[e] != 0 {
		e++
	}
	return string(m.normalized[v:e])
}

// transformFirst is spm_precompiled's transform: the replacement of the shortest key that
// prefixes chunk.
func (m *charsMap) transformFirst(chunk string) (string, bool) {
	out, found := "", false
	m.prefixes(chunk, func(_, v int) bool {
		out, found = m.str(v), true
		return false
	})
	return out, found
}

// longest is SentencePiece's NormalizePrefix lookup: the longest key prefixing s, its length and
// replacement; n is 0 when none matches.
func (m *charsMap) longest(s string) (n int, out string) {
	best := -1
	m.prefixes(s, func(l, v int) bool {
		if l > n {
			n, best = l, v
		}
		return true
	})
	if best < 0 {
		return 0, ""
	}
	return n, m.str(best)
}
