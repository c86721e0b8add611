package text

import (
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"golang.org/x/text/unicode/norm"
)

// normalizer transforms a piece of text before pre-tokenization; the ones here follow
// huggingface/tokenizers tokenizers/src/normalizers (bert.rs, unicode.rs, strip.rs, replace.rs,
// prepend.rs, utils.rs, byte_level.rs, precompiled.rs).
type normalizer interface {
	normalize(n nstr) nstr
}

type normSequence []normalizer

func (s normSequence) normalize(n nstr) nstr {
	for _, x := range s {
		n = x.normalize(n)
	}
	return n
}

// unicodeNorm applies NFC, NFD, NFKC or NFKD. Each output segment is aligned to the first input
// character of its segment.
type unicodeNorm struct{ form norm.Form }

func (u unicodeNorm) normalize(n nstr) nstr {
	return applyForm(u.form, n)
}

func applyForm(form norm.Form, n nstr) nstr {
	if n.empty() {
		return n
	}
	s := n.String()
	if form.IsNormalString(s) {
		return n
	}
	// Byte offset in s of each rune, to map segment starts back to runes.
	runeAt := make(map[int]int, len(n.r))
	off := 0
	for i, c := range n.r {
		runeAt[off] = i
		off += utf8.RuneLen(c)
	}
	var b builder
	var it norm.Iter
	it.InitString(form, s)
	for !it.Done() {
		pos := it.Pos()
		seg := it.Next()
		o := 0
		if ri, ok := runeAt[pos]; ok {
			o = n.orig[ri]
		} else if len(b.out.orig) > 0 {
			o = b.out.orig[len(b.out.orig)-1]
		}
		b.addString(string(seg), o)
	}
	return b.out
}

type lowercaseNorm struct{}

func (lowercaseNorm) normalize(n nstr) nstr { return n.lowercase() }

type stripNorm struct{ left, right bool }

func (s stripNorm) normalize(n nstr) nstr { return n.strip(s.left, s.right) }

// stripAccentsNorm removes combining marks (general category M).
type stripAccentsNorm struct{}

func (stripAccentsNorm) normalize(n nstr) nstr {
	return n.filter(func(c rune) bool { return !unicode.IsMark(c) })
}

type replaceNorm struct {
	p       pattern
	content string
}

func (r replaceNorm) normalize(n nstr) nstr { return n.replaceMatches(r.p, r.content) }

type prependNorm struct{ s string }

func (p prependNorm) normalize(n nstr) nstr { return n.prepend(p.s) }

// byteLevelNorm maps every byte of the UTF-8 text to its GPT-2 byte-level character.
type byteLevelNorm struct{}

func (byteLevelNorm) normalize(n nstr) nstr { return toByteLevel(n) }

// nmtNorm is the Nmt normalizer: drops ASCII control characters and maps some code points to a space.
type nmtNorm struct{}

func (nmtNorm) normalize(n nstr) nstr {
	return n.mapRunes(func(c rune, emit func(rune)) {
		switch {
		case c >= 0x01 && c <= 0x08, c == 0x0B, c >= 0x0E && c <= 0x1F, c == 0x7F, c == 0x8F, c == 0x9F:
			return
		case c == 0x09, c == 0x0A, c == 0x0C, c == 0x0D, c == 0x1680, c >= 0x200B && c <= 0x200F,
			c == 0x2028, c == 0x2029, c == 0x2581, c == 0xFEFF, c == 0xFFFD:
			emit(' ')
		default:
			emit(c)
		}
	})
}

// bertNorm is BertNormalizer (huggingface/tokenizers tokenizers/src/normalizers/bert.rs).
type bertNorm struct {
	cleanText, chineseChars, stripAccents, lowercase bool
}

func (b bertNorm) normalize(n nstr) nstr {
	if b.cleanText {
		n = n.mapRunes(func(c rune, emit func(rune)) {
			if c == 0 || c == 0xFFFD || bertIsControl(c) {
				return
			}
			if c == '\t' || c == '\n' || c == '\r' || isRustWhitespace(c) {
				emit(' ')
				return
			}
			emit(c)
		})
	}
	if b.chineseChars {
		n = n.mapRunes(func(c rune, emit func(rune)) {
			if isChineseChar(c) {
				emit(' ')
				emit(c)
				emit(' ')
				return
			}
			emit(c)
		})
	}
	if b.stripAccents {
		n = applyForm(norm.NFD, n).filter(func(c rune) bool { return !unicode.Is(unicode.Mn, c) })
	}
	if b.lowercase {
		n = n.lowercase()
	}
	return n
}

// bertIsControl is "other" (Cc, Cf, Cn, Co, Cs) except tab, newline and carriage return.
func bertIsControl(c rune) bool {
	if c == '\t' || c == '\n' || c == '\r' {
		return false
	}
	if unicode.Is(unicode.C, c) {
		return true
	}
	// Unassigned code points (Cn) are in no category table.
	return !unicode.In(c, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

func isChineseChar(c rune) bool {
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
		(c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
		(c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F)
}

// precompiledNorm is SentencePiece's precompiled character map applied the way Hugging Face
// tokenizers does it (huggingface/tokenizers tokenizers/src/normalizers/precompiled.rs with
// huggingface/spm_precompiled src/lib.rs): each extended grapheme cluster shorter than 6 bytes is
// looked up whole, otherwise each of its characters is.
type precompiledNorm struct{ m *charsMap }

func (p precompiledNorm) normalize(n nstr) nstr {
	if n.empty() || p.m == nil {
		return n
	}
	var b builder
	s := n.String()
	// rune index of each byte offset
	ri := 0
	g := uniseg.NewGraphemes(s)
	for g.Next() {
		cluster := g.Str()
		runes := g.Runes()
		if len(cluster) < 6 {
			if out, ok := p.m.transformFirst(cluster); ok {
				b.addString(out, n.orig[ri])
				ri += len(runes)
				continue
			}
		}
		for _, c := range runes {
			if out, ok := p.m.transformFirst(string(c)); ok {
				b.addString(out, n.orig[ri])
			} else {
				b.add(c, n.orig[ri])
			}
			ri++
		}
	}
	return b.out
}
