package text

import (
	"unicode"
	"unicode/utf8"
)

// nstr is a piece of (possibly normalized) text: its runes and, for each rune, the byte offset
// in the original input of the character it came from. It is the part of the Hugging Face
// tokenizers NormalizedString (huggingface/tokenizers tokenizers/src/tokenizer/normalizer.rs)
// that tokenization needs: ids do not depend on offsets, except for the Metaspace pre-tokenizer's
// prepend_scheme "first", which asks whether a piece starts at the beginning of the original input.
type nstr struct {
	r    []rune
	orig []int
}

func newNstr(s string) nstr {
	n := nstr{r: make([]rune, 0, len(s)), orig: make([]int, 0, len(s))}
	for i, c := range s {
		n.r = append(n.r, c)
		n.orig = append(n.orig, i)
	}
	return n
}

func (n nstr) String() string { return string(n.r) }

func (n nstr) empty() bool { return len(n.r) == 0 }

// origStart is the original offset of the piece's first character (-1 when empty).
func (n nstr) origStart() int {
	if len(n.orig) == 0 {
		return -1
	}
	return n.orig[0]
}

func (n nstr) slice(i, j int) nstr { return nstr{r: n.r[i:j:j], orig: n.orig[i:j:j]} }

// builder accumulates the output of a transformation, each new rune aligned to a source rune.
type builder struct{ out nstr }

func (b *builder) add(c rune, orig int) {
	b.out.r = append(b.out.r, c)
	b.out.orig = append(b.out.orig, orig)
}

func (b *builder) addString(s string, orig int) {
	for _, c := range s {
		b.add(c, orig)
	}
}

// mapRunes replaces every rune by f's output (possibly empty, possibly several runes).
func (n nstr) mapRunes(f func(c rune, emit func(rune))) nstr {
	var b builder
	b.out.r = make([]rune, 0, len(n.r))
	b.out.orig = make([]int, 0, len(n.r))
	for i, c := range n.r {
		o := n.orig[i]
		f(c, func(x rune) { b.add(x, o) })
	}
	return b.out
}

func (n nstr) filter(keep func(rune) bool) nstr {
	return n.mapRunes(func(c rune, emit func(rune)) {
		if keep(c) {
			emit(c)
		}
	})
}

// lowercase follows Rust's char::to_lowercase, which (unlike Go's unicode.ToLower) maps U+0130
// to "i̇", two characters.
func (n nstr) lowercase() nstr {
	return n.mapRunes(func(c rune, emit func(rune)) {
		if c == 'İ' {
			emit('i')
			emit('\u0307')
			return
		}
		emit(unicode.ToLower(c))
	})
}

// prepend puts s before the first character (nothing for an empty piece), aligned to it.
func (n nstr) prepend(s string) nstr {
	if n.empty() {
		return n
	}
	var b builder
	b.addString(s, n.orig[0])
	b.out.r = append(b.out.r, n.r...)
	b.out.orig = append(b.out.orig, n.orig...)
	return b.out
}

// strip removes leading and/or trailing white space (Rust's char::is_whitespace).
func (n nstr) strip(left, right bool) nstr {
	i, j := 0, len(n.r)
	if left {
		for i < j && isRustWhitespace(n.r[i]) {
			i++
		}
	}
	if right {
		for j > i && isRustWhitespace(n.r[j-1]) {
			j--
		}
	}
	return n.slice(i, j)
}

// replaceMatches replaces each match (rune ranges from a pattern) with content; the new runes take
// the alignment of the match's first character.
func (n nstr) replaceMatches(p pattern, content string) nstr {
	var b builder
	for _, m := range p.findMatches(n.r) {
		if m.match {
			o := 0
			if m.start < len(n.orig) {
				o = n.orig[m.start]
			}
			b.addString(content, o)
			continue
		}
		b.out.r = append(b.out.r, n.r[m.start:m.end]...)
		b.out.orig = append(b.out.orig, n.orig[m.start:m.end]...)
	}
	return b.out
}

// isRustWhitespace is Rust's char::is_whitespace: the Unicode White_Space property.
func isRustWhitespace(c rune) bool { return unicode.Is(unicode.White_Space, c) }

// isRustNumeric is Rust's char::is_numeric: general categories Nd, Nl and No.
func isRustNumeric(c rune) bool { return unicode.IsNumber(c) }

// isPunct is the test of the Bert and Punctuation pre-tokenizers: ASCII punctuation (which
// includes symbols such as $ + < = > ^ ` | ~) or a Unicode punctuation category.
func isPunct(c rune) bool {
	if c < utf8.RuneSelf {
		return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~')
	}
	return unicode.IsPunct(c)
}

// isWordChar is the \w of Rust's regex crate: Alphabetic, marks, decimal digits, connector
// punctuation and Join_Control.
func isWordChar(c rune) bool {
	return unicode.IsLetter(c) || unicode.IsMark(c) || unicode.Is(unicode.Nd, c) || unicode.Is(unicode.Pc, c) ||
		unicode.Is(unicode.Nl, c) || unicode.Is(unicode.Other_Alphabetic, c) || unicode.Is(unicode.Join_Control, c)
}
