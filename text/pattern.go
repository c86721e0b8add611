package text

import (
	"fmt"
	"strings"
	"time"

	"github.com/dlclark/regexp2"
)

// span is a rune range of a piece, and whether it is a match of the pattern; a pattern's spans
// cover the whole piece in order (huggingface/tokenizers tokenizers/src/tokenizer/pattern.rs).
type span struct {
	start, end int
	match      bool
}

type pattern interface {
	findMatches(r []rune) []span
}

// regexPattern is a Split / Replace regex. Hugging Face tokenizers compiles these with
// Oniguruma; regexp2 (a port of .NET's backtracking engine) has the same lookarounds, \p{..}
// classes and (?i:..) groups that the GPT-2, Llama-3, Qwen2, cl100k/o200k and DeepSeek patterns use.
//
// A backtracking engine can take exponential time on a hostile pattern (or a benign-looking one
// on the wrong text). A match that runs past regexTimeout is never taken as "no more matches",
// which would silently give ids that differ from the reference: it stops the encoding with a
// *PatternTimeoutError naming the pattern, so the cost of one Encode is bounded by its normal
// work plus one timeout.
//
// The patterns real tokenizers use run on RE2 instead (re2Pattern, linear time), where they can
// be translated exactly.
type regexPattern struct {
	re   *regexp2.Regexp
	expr string
	re2  *re2Pattern // nil: regexp2 matches
}

// regexTimeout bounds one match of a Split / Replace regex. The patterns of real tokenizers
// match a piece in microseconds.
var regexTimeout = 2 * time.Second

// PatternTimeoutError reports a tokenizer regex that did not answer within its time bound.
type PatternTimeoutError struct {
	Pattern string
	Runes   int // length of the piece being matched
	Timeout time.Duration
}

func (e *PatternTimeoutError) Error() string {
	return fmt.Sprintf("tokenizer regex %q found no answer within %v on a %d-character piece (catastrophic backtracking): refusing to return ids that could differ from the reference",
		e.Pattern, e.Timeout, e.Runes)
}

// SafeEncode encodes s with t (EncodeSpecial when special), returning a *PatternTimeoutError
// instead of panicking with it.
func SafeEncode(t Tokenizer, s string, special bool) (ids []int, err error) {
	defer RecoverTimeout(&err)
	if special {
		return t.EncodeSpecial(s), nil
	}
	return t.Encode(s), nil
}

// RecoverTimeout, deferred, turns a tokenizer's *PatternTimeoutError panic into *err (other
// panics go on).
func RecoverTimeout(err *error) {
	if r := recover(); r != nil {
		te, ok := r.(*PatternTimeoutError)
		if !ok {
			panic(r)
		}
		*err = te
	}
}

func compileRegex(expr string) (*regexPattern, error) {
	re, err := regexp2.Compile(possessiveToAtomic(expr), regexp2.None)
	if err != nil {
		return nil, err
	}
	re.MatchTimeout = regexTimeout
	p := &regexPattern{re: re, expr: expr}
	if r2, ok := compileRE2(expr); ok {
		p.re2 = r2
	}
	return p, nil
}

func literalPattern(s string) (*regexPattern, error) {
	return compileRegex(regexp2.Escape(s))
}

func (p *regexPattern) findMatches(r []rune) []span {
	if p.re2 != nil {
		return p.re2.findMatches(r)
	}
	return p.findMatches2(r)
}

// findMatches2 matches with regexp2.
func (p *regexPattern) findMatches2(r []rune) []span {
	if len(r) == 0 {
		return []span{{0, 0, false}}
	}
	var out []span
	prev := 0
	m, err := p.re.FindRunesMatch(r)
	for err == nil && m != nil {
		s, e := m.Index, m.Index+m.Length
		if prev != s {
			out = append(out, span{prev, s, false})
		}
		out = append(out, span{s, e, true})
		prev = e
		m, err = p.re.FindNextMatch(m)
	}
	if err != nil { // the only error of a match is its timeout
		panic(&PatternTimeoutError{Pattern: p.expr, Runes: len(r), Timeout: p.re.MatchTimeout})
	}
	if prev != len(r) {
		out = append(out, span{prev, len(r), false})
	}
	return out
}

// charPattern matches single characters for which f holds.
type charPattern func(rune) bool

func (f charPattern) findMatches(r []rune) []span {
	if len(r) == 0 {
		return []span{{0, 0, false}}
	}
	var out []span
	last := 0
	for i, c := range r {
		if f(c) {
			if last < i {
				out = append(out, span{last, i, false})
			}
			out = append(out, span{i, i + 1, true})
			last = i + 1
		}
	}
	if last < len(r) {
		out = append(out, span{last, len(r), false})
	}
	return out
}

type invertPattern struct{ p pattern }

func (p invertPattern) findMatches(r []rune) []span {
	out := p.p.findMatches(r)
	for i := range out {
		out[i].match = !out[i].match
	}
	return out
}

// possessiveToAtomic rewrites Oniguruma's possessive quantifiers (X*+, X++, X?+, X{n,m}+), which
// .NET syntax lacks, as atomic groups (?>X*) with the same meaning. It leaves everything else,
// including escapes and character classes, untouched.
func possessiveToAtomic(expr string) string {
	if !strings.Contains(expr, "+") {
		return expr
	}
	r := []rune(expr)
	var out []rune
	lastAtom := -1
	inClass := false
	var groupStack []int
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case inClass:
			out = append(out, c)
			if c == '\\' && i+1 < len(r) {
				i++
				out = append(out, r[i])
			} else if c == ']' {
				inClass = false
			}
			continue
		case c == '\\':
			lastAtom = len(out)
			out = append(out, c)
			if i+1 < len(r) {
				i++
				out = append(out, r[i])
				// \p{..}, \x{..}
				if (r[i] == 'p' || r[i] == 'P' || r[i] == 'x') && i+1 < len(r) && r[i+1] == '{' {
					for i+1 < len(r) {
						i++
						out = append(out, r[i])
						if r[i] == '}' {
							break
						}
					}
				}
			}
			continue
		case c == '[':
			lastAtom = len(out)
			inClass = true
			out = append(out, c)
			if i+1 < len(r) && r[i+1] == '^' {
				i++
				out = append(out, r[i])
			}
			if i+1 < len(r) && r[i+1] == ']' {
				i++
				out = append(out, r[i])
			}
			continue
		case c == '(':
			groupStack = append(groupStack, len(out))
			out = append(out, c)
			lastAtom = -1
			continue
		case c == ')':
			out = append(out, c)
			if n := len(groupStack); n > 0 {
				lastAtom = groupStack[n-1]
				groupStack = groupStack[:n-1]
			}
			continue
		case c == '*' || c == '+' || c == '?' || c == '{':
			q := []rune{c}
			if c == '{' {
				j := i + 1
				for j < len(r) && r[j] != '}' {
					j++
				}
				if j >= len(r) {
					out = append(out, c)
					lastAtom = len(out) - 1
					continue
				}
				q = r[i : j+1]
				i = j
			}
			if i+1 < len(r) && r[i+1] == '+' && lastAtom >= 0 {
				i++
				atom := append([]rune(nil), out[lastAtom:]...)
				out = append(out[:lastAtom], []rune("(?>")...)
				out = append(out, atom...)
				out = append(out, q...)
				out = append(out, ')')
				lastAtom = -1
				continue
			}
			out = append(out, q...)
			if i+1 < len(r) && r[i+1] == '?' { // lazy
				i++
				out = append(out, '?')
			}
			lastAtom = -1
			continue
		default:
			lastAtom = len(out)
			out = append(out, c)
		}
	}
	return string(out)
}

func regexError(field, expr string, err error) error {
	return fmt.Errorf("%s: regex %q: %w", field, expr, err)
}
