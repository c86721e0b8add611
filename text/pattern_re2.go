package text

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// re2Pattern runs a Split regex on Go's regexp (RE2: linear time, no timeout needed) when the
// pattern can be translated exactly. The pre-tokenizer patterns of GPT-2, Llama 3, Qwen2, o200k
// and DeepSeek use one lookahead, `\s+(?!\S)` followed by `|\s+` (or `|\s`): a run of
// whitespace, less its last character when a non-space follows. It is matched as `(\s+)` and the
// match shortened afterwards, which gives what a backtracking engine gives: the greedy run fails
// the lookahead only at its end, so backtracking takes one character off (and a single space
// falls through to the next alternative, which matches the same character). Go's regexp prefers,
// among leftmost matches, the one a backtracking engine would choose, so the other alternatives
// agree. Patterns with anything else RE2 lacks (other lookarounds, possessive quantifiers,
// anchors, backreferences, \d \w \b) stay on regexp2.
type re2Pattern struct {
	re     *regexp.Regexp
	lookWS int // submatch index of the translated `\s+(?!\S)` group
}

// wsClass is regexp2's \s (unicode.IsSpace: the White_Space property) as RE2 class members; RE2's
// own \s is ASCII only.
const wsClass = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`

const lookWS = `\s+(?!\S)`

// compileRE2 translates expr for RE2, or reports that it cannot be translated exactly.
func compileRE2(expr string) (*re2Pattern, bool) {
	if strings.Count(expr, lookWS) != 1 {
		return nil, false
	}
	i := strings.Index(expr, lookWS)
	// The lookahead alternative must be a whole alternative followed by `|\s+` or `|\s` (the
	// last one), at the top level.
	if rest := expr[i+len(lookWS):]; rest != `|\s+` && rest != `|\s` {
		return nil, false
	}
	if i == 0 || expr[i-1] != '|' || depth(expr[:i]) != 0 {
		return nil, false
	}
	head, ok := translateRE2(expr[:i])
	if !ok {
		return nil, false
	}
	re, err := regexp.Compile(head + `([` + wsClass + `]+)`)
	if err != nil {
		return nil, false
	}
	return &re2Pattern{re: re, lookWS: re.NumSubexp()}, true
}

// depth is the parenthesis depth at the end of a pattern prefix (escapes and classes skipped).
func depth(s string) int {
	d, inClass := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(s) && s[i+1] == '^' {
				i++
			}
			if i+1 < len(s) && s[i+1] == ']' {
				i++
			}
		case c == '(':
			d++
		case c == ')':
			d--
		}
	}
	return d
}

// translateRE2 rewrites the escapes whose meaning differs between regexp2 and RE2, and refuses
// the constructs RE2 lacks or reads differently.
func translateRE2(s string) (string, bool) {
	var b strings.Builder
	inClass := false
	var groups []bool // open groups: whether each is a (?i: group
	fold := func() bool { return slices.Contains(groups, true) }
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case fold() && c == '[':
			return "", false // a class under (?i): folded differently
		case fold() && !inClass && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'):
			// regexp2 folds ASCII letters to their two cases only; RE2 also to ſ and K (the
			// Kelvin sign): spell the two cases out
			lo, up := c|0x20, c&^0x20
			b.WriteString("[" + string(rune(lo)) + string(rune(up)) + "]")
		case fold() && !inClass && c >= 0x80:
			return "", false
		case c == '\\' && i+1 < len(s):
			e := s[i+1]
			i++
			switch e {
			case 's':
				if inClass {
					b.WriteString(wsClass)
				} else {
					b.WriteString("[" + wsClass + "]")
				}
			case 'S':
				if inClass {
					return "", false
				}
				b.WriteString("[^" + wsClass + "]")
			case 'd', 'D', 'w', 'W', 'b', 'B', 'A', 'z', 'Z', 'G', 'k', 'K', 'h', 'H', 'R', 'X', 'x', 'u', 'c', 'e', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				return "", false
			case 'p', 'P': // \p{..}: copied whole, so that its } is not read as a quantifier's
				j := strings.IndexByte(s[i:], '}')
				if i+1 >= len(s) || s[i+1] != '{' || j < 0 {
					return "", false
				}
				b.WriteString(`\` + s[i:i+j+1])
				i += j
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case inClass:
			if c == '[' { // a nested class or POSIX class: read differently
				return "", false
			}
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(s) && s[i+1] == '^' {
				i++
				b.WriteByte('^')
			}
			if i+1 < len(s) && s[i+1] == ']' {
				i++
				b.WriteByte(']')
			}
		case c == '(' && i+1 < len(s) && s[i+1] == '?':
			// (?i: and (?: only; lookarounds, atomic groups, named groups, inline flags for
			// the rest of the pattern are refused.
			switch {
			case strings.HasPrefix(s[i:], "(?i:"):
				groups = append(groups, true)
			case strings.HasPrefix(s[i:], "(?:"):
				groups = append(groups, false)
			default:
				return "", false
			}
			b.WriteString("(?:")
			i += len("(?:") - 1
			if groups[len(groups)-1] {
				i++
			}
		case c == '(':
			groups = append(groups, false)
			b.WriteString("(?:") // keep the lookahead group the only capture
		case c == ')':
			if len(groups) == 0 {
				return "", false
			}
			groups = groups[:len(groups)-1]
			b.WriteByte(c)
		case (c == '+' || c == '*' || c == '?' || c == '}') && i+1 < len(s) && s[i+1] == '+':
			return "", false // possessive
		case c == '$' || c == '^':
			return "", false // .NET's $ also matches before a final newline
		default:
			b.WriteByte(c)
		}
	}
	if inClass || !utf8.ValidString(s) {
		return "", false
	}
	return b.String(), true
}

func (p *re2Pattern) findMatches(r []rune) []span {
	if len(r) == 0 {
		return []span{{0, 0, false}}
	}
	s := string(r)
	// rune index of every byte offset that starts a rune (and of len(s))
	runeAt := make([]int, len(s)+1)
	n := 0
	for off := range s {
		runeAt[off] = n
		n++
	}
	runeAt[len(s)] = n
	var out []span
	prev, bpos := 0, 0 // runes, bytes
	for bpos <= len(s) {
		loc := p.re.FindStringSubmatchIndex(s[bpos:])
		if loc == nil {
			break
		}
		bs, be := bpos+loc[0], bpos+loc[1]
		ms, me := runeAt[bs], runeAt[be]
		if g := 2 * p.lookWS; loc[g] >= 0 && me-ms >= 2 && me < len(r) {
			me-- // the lookahead: a non-space follows, give the run's last character back
			be -= utf8.RuneLen(r[me])
		}
		if prev != ms {
			out = append(out, span{prev, ms, false})
		}
		out = append(out, span{ms, me, true})
		prev = me
		if be == bs { // an empty match: step over one character
			if bs == len(s) {
				break
			}
			_, w := utf8.DecodeRuneInString(s[bs:])
			be = bs + w
		}
		bpos = be
	}
	if prev != len(r) {
		out = append(out, span{prev, len(r), false})
	}
	return out
}
