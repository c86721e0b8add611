package text

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder turns token strings back into text pieces (huggingface/tokenizers
// tokenizers/src/decoders); the pieces are concatenated at the end.
type decoder interface {
	decodeChain(tokens []string) []string
}

type decSequence []decoder

func (s decSequence) decodeChain(t []string) []string {
	for _, d := range s {
		t = d.decodeChain(t)
	}
	return t
}

// byteLevelDec maps byte-level characters back to bytes, all tokens at once (a token may end in
// the middle of a character); invalid UTF-8 becomes U+FFFD.
type byteLevelDec struct{}

func (byteLevelDec) decodeChain(tokens []string) []string {
	var b []byte
	for _, t := range tokens {
		start := len(b)
		ok := true
		for _, c := range t {
			x, found := charBytes[c]
			if !found {
				ok = false
				break
			}
			b = append(b, x)
		}
		if !ok {
			b = append(b[:start], t...)
		}
	}
	return []string{utf8Lossy(b)}
}

// utf8Lossy is Rust's String::from_utf8_lossy: every maximal subpart of an ill-formed sequence
// becomes one U+FFFD (Unicode §3.9), where Go's strings.ToValidUTF8 would merge adjacent ones.
func utf8Lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			sb.Write(b[i : i+n])
			i += n
			continue
		}
		sb.WriteString("\uFFFD")
		i += maximalSubpart(b[i:])
	}
	return sb.String()
}

// maximalSubpart is the length of the longest prefix of b that starts a well-formed sequence
// (at least 1).
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 {
			if x < lo || x > hi {
				return n
			}
		} else if x < 0x80 || x > 0xBF {
			return n
		}
		n++
	}
	return n
}

type metaspaceDec struct {
	replacement rune
	scheme      prependScheme
}

func (m metaspaceDec) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		var sb strings.Builder
		for _, c := range t {
			if c == m.replacement {
				if i == 0 && m.scheme != prependNever {
					continue
				}
				sb.WriteByte(' ')
			} else {
				sb.WriteRune(c)
			}
		}
		out[i] = sb.String()
	}
	return out
}

type wordPieceDec struct {
	prefix  string
	cleanup bool
}

func wordPieceCleanup(s string) string {
	for _, p := range [][2]string{{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
		{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}} {
		s = strings.ReplaceAll(s, p[0], p[1])
	}
	return s
}

func (w wordPieceDec) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if i != 0 {
			if s, ok := strings.CutPrefix(t, w.prefix); ok {
				t = s
			} else {
				t = " " + t
			}
		}
		if w.cleanup {
			t = wordPieceCleanup(t)
		}
		out[i] = t
	}
	return out
}

type bpeDec struct{ suffix string }

func (b bpeDec) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		rep := " "
		if i == len(tokens)-1 {
			rep = ""
		}
		out[i] = strings.ReplaceAll(t, b.suffix, rep)
	}
	return out
}

type byteFallbackDec struct{}

func (byteFallbackDec) decodeChain(tokens []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && strings.HasSuffix(t, ">") {
			if v, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
				pending = append(pending, byte(v))
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

type fuseDec struct{}

func (fuseDec) decodeChain(tokens []string) []string { return []string{strings.Join(tokens, "")} }

type stripDec struct {
	content     rune
	start, stop int
}

func (s stripDec) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for k, t := range tokens {
		r := []rune(t)
		startCut := 0
		for i := 0; i < s.start && i < len(r); i++ {
			if r[i] != s.content {
				break
			}
			startCut = i + 1
		}
		stopCut := len(r)
		for i := 0; i < s.stop && i < len(r); i++ {
			idx := len(r) - i - 1
			if r[idx] != s.content {
				break
			}
			stopCut = idx
		}
		if startCut > stopCut {
			startCut = stopCut
		}
		out[k] = string(r[startCut:stopCut])
	}
	return out
}

type replaceDec struct {
	p       pattern
	content string
}

func (d replaceDec) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		r := []rune(t)
		var sb strings.Builder
		for _, m := range d.p.findMatches(r) {
			if m.match {
				sb.WriteString(d.content)
			} else {
				sb.WriteString(string(r[m.start:m.end]))
			}
		}
		out[i] = sb.String()
	}
	return out
}

type ctcDec struct {
	pad, delimiter string
	cleanup        bool
}

func (c ctcDec) decodeChain(tokens []string) []string {
	var out []string
	for i, t := range tokens {
		if i > 0 && t == tokens[i-1] {
			continue
		}
		s := strings.ReplaceAll(t, c.pad, "")
		if c.cleanup {
			s = strings.ReplaceAll(wordPieceCleanup(s), c.delimiter, " ")
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
