package text

import (
	"unicode/utf8"
)

// piece is one split of the input on its way through the pipeline: text still to tokenize, or
// an added token already recognised (ids set).
type piece struct {
	n   nstr
	ids []int
	tok bool
}

// preTokenizer splits pieces further (huggingface/tokenizers tokenizers/src/pre_tokenizers).
type preTokenizer interface {
	preTokenize(ps []piece) []piece
}

// splitEach applies f to every piece not yet tokenized, dropping empty results, as
// PreTokenizedString::split does.
func splitEach(ps []piece, f func(nstr) []nstr) []piece {
	out := make([]piece, 0, len(ps))
	for _, p := range ps {
		if p.tok {
			out = append(out, p)
			continue
		}
		for _, n := range f(p.n) {
			if !n.empty() {
				out = append(out, piece{n: n})
			}
		}
	}
	return out
}

// normalizeEach replaces every untokenized piece by f's output.
func normalizeEach(ps []piece, f func(nstr) nstr) {
	for i := range ps {
		if !ps[i].tok {
			ps[i].n = f(ps[i].n)
		}
	}
}

type splitBehavior int

const (
	removed splitBehavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

var behaviorNames = map[string]splitBehavior{
	"Removed": removed, "Isolated": isolated, "MergedWithPrevious": mergedWithPrevious,
	"MergedWithNext": mergedWithNext, "Contiguous": contiguous,
}

// splitBy is NormalizedString::split (huggingface/tokenizers tokenizers/src/tokenizer/normalizer.rs).
func splitBy(n nstr, p pattern, b splitBehavior) []nstr {
	ms := p.findMatches(n.r)
	type part struct {
		start, end int
		remove     bool
	}
	var parts []part
	switch b {
	case isolated:
		for _, m := range ms {
			parts = append(parts, part{m.start, m.end, false})
		}
	case removed:
		for _, m := range ms {
			parts = append(parts, part{m.start, m.end, m.match})
		}
	case contiguous:
		prev := false
		for _, m := range ms {
			if m.match == prev && len(parts) > 0 {
				parts[len(parts)-1].end = m.end
			} else {
				parts = append(parts, part{m.start, m.end, false})
			}
			prev = m.match
		}
	case mergedWithPrevious:
		prev := false
		for _, m := range ms {
			if m.match && !prev && len(parts) > 0 {
				parts[len(parts)-1].end = m.end
			} else {
				parts = append(parts, part{m.start, m.end, false})
			}
			prev = m.match
		}
	case mergedWithNext:
		prev := false
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.match && !prev && len(parts) > 0 {
				parts[len(parts)-1].start = m.start
			} else {
				parts = append(parts, part{m.start, m.end, false})
			}
			prev = m.match
		}
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	out := make([]nstr, 0, len(parts))
	for _, pt := range parts {
		if !pt.remove {
			out = append(out, n.slice(pt.start, pt.end))
		}
	}
	return out
}

type preSequence []preTokenizer

func (s preSequence) preTokenize(ps []piece) []piece {
	for _, p := range s {
		ps = p.preTokenize(ps)
	}
	return ps
}

type patternSplit struct {
	p pattern
	b splitBehavior
}

func (s patternSplit) preTokenize(ps []piece) []piece {
	return splitEach(ps, func(n nstr) []nstr { return splitBy(n, s.p, s.b) })
}

// gpt2Pattern is the GPT-2 pre-tokenization regex (openai/gpt-2 src/encoder.py), the ByteLevel
// pre-tokenizer's split.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

var gpt2Regex = func() *regexPattern {
	p, err := compileRegex(gpt2Pattern)
	if err != nil {
		panic(err)
	}
	return p
}()

// byteLevelPre is the ByteLevel pre-tokenizer (huggingface/tokenizers
// tokenizers/src/pre_tokenizers/byte_level.rs).
type byteLevelPre struct{ addPrefixSpace, useRegex bool }

func (b byteLevelPre) preTokenize(ps []piece) []piece {
	ps = splitEach(ps, func(n nstr) []nstr {
		if b.addPrefixSpace && (n.empty() || n.r[0] != ' ') {
			var bl builder
			o := 0
			if !n.empty() {
				o = n.orig[0]
			}
			bl.add(' ', o)
			bl.out.r = append(bl.out.r, n.r...)
			bl.out.orig = append(bl.out.orig, n.orig...)
			n = bl.out
		}
		if b.useRegex {
			return splitBy(n, gpt2Regex, isolated)
		}
		return []nstr{n}
	})
	normalizeEach(ps, toByteLevel)
	return ps
}

var bytesChar, charBytes = func() ([256]rune, map[rune]byte) {
	var bc [256]rune
	cb := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			bc[b] = rune(b)
		} else {
			bc[b] = rune(256 + n)
			n++
		}
		cb[bc[b]] = byte(b)
	}
	return bc, cb
}()

func toByteLevel(n nstr) nstr {
	var b builder
	var buf [utf8.UTFMax]byte
	for i, c := range n.r {
		k := utf8.EncodeRune(buf[:], c)
		for _, x := range buf[:k] {
			b.add(bytesChar[x], n.orig[i])
		}
	}
	return b.out
}

type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// metaspacePre is the Metaspace pre-tokenizer (huggingface/tokenizers
// tokenizers/src/pre_tokenizers/metaspace.rs).
type metaspacePre struct {
	replacement rune
	scheme      prependScheme
	split       bool
}

func (m metaspacePre) preTokenize(ps []piece) []piece {
	rep := string(m.replacement)
	sp := charPattern(func(c rune) bool { return c == ' ' })
	return splitEach(ps, func(n nstr) []nstr {
		n = n.replaceMatches(sp, rep)
		switch m.scheme {
		case prependAlways:
			if n.empty() || n.r[0] != m.replacement {
				n = n.prepend(rep)
			}
		case prependFirst:
			if (n.empty() || n.r[0] != m.replacement) && n.origStart() == 0 {
				n = n.prepend(rep)
			}
		}
		if m.split {
			return splitBy(n, charPattern(func(c rune) bool { return c == m.replacement }), mergedWithNext)
		}
		return []nstr{n}
	})
}

// wordRuns matches \w+|[^\w\s]+ (the Whitespace pre-tokenizer's regex) with Rust regex classes.
type wordRuns struct{}

func (wordRuns) findMatches(r []rune) []span {
	if len(r) == 0 {
		return []span{{0, 0, false}}
	}
	var out []span
	prev := 0
	for i := 0; i < len(r); {
		var class func(rune) bool
		switch {
		case isWordChar(r[i]):
			class = isWordChar
		case !isRustWhitespace(r[i]):
			class = func(c rune) bool { return !isWordChar(c) && !isRustWhitespace(c) }
		default:
			i++
			continue
		}
		j := i + 1
		for j < len(r) && class(r[j]) {
			j++
		}
		if prev != i {
			out = append(out, span{prev, i, false})
		}
		out = append(out, span{i, j, true})
		prev, i = j, j
	}
	if prev != len(r) {
		out = append(out, span{prev, len(r), false})
	}
	return out
}

type fixedLengthPre struct{ n int }

func (f fixedLengthPre) preTokenize(ps []piece) []piece {
	return splitEach(ps, func(n nstr) []nstr {
		var out []nstr
		for i := 0; i < len(n.r); i += f.n {
			out = append(out, n.slice(i, min(i+f.n, len(n.r))))
		}
		return out
	})
}

func bertPre() preTokenizer {
	return preSequence{
		patternSplit{charPattern(isRustWhitespace), removed},
		patternSplit{charPattern(isPunct), isolated},
	}
}
