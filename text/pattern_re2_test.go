package text

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The RE2 translation of the real pre-tokenizer patterns gives regexp2's matches exactly, on
// random text over an alphabet of the characters where the engines could differ (Unicode
// spaces, newlines, apostrophes, case-folding look-alikes, marks, digits, CJK, emoji).
func TestRE2MatchesRegexp2(t *testing.T) {
	patterns := []string{gpt2Pattern}
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	re := regexp.MustCompile(`"Regex":\s*("(?:[^"\\]|\\.)*")`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range re.FindAllSubmatch(b, -1) {
			var s string
			require.NoError(t, json.Unmarshal(m[1], &s))
			patterns = append(patterns, s)
		}
	}
	alphabet := []rune("aZé'sSTtlLdDmMvV1٣ \t\n\r\v\f\u00a0\u2003\u3000\u0085\u202f.,!?-_/\\\"()[]{}ſKK\u0301日本語ア😀\u200b")
	rng := rand.New(rand.NewPCG(1, 2))
	translated := 0
	for _, expr := range patterns {
		p, err := compileRegex(expr)
		require.NoError(t, err)
		if p.re2 == nil {
			continue
		}
		translated++
		for range 3000 {
			n := rng.IntN(24)
			var sb strings.Builder
			for range n {
				sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
			}
			r := []rune(sb.String())
			require.Equal(t, p.findMatches2(r), p.re2.findMatches(r), "pattern %q on %q", expr, sb.String())
		}
	}
	require.GreaterOrEqual(t, translated, 5, "GPT-2, Llama 3, Qwen2, o200k and DeepSeek's patterns run on RE2")
	for _, expr := range []string{`\s++$|\s+(?!\S)|\s`, `(a|aa)+$`, `(?=x)\s+(?!\S)|\s+`, `\d+|\s+(?!\S)|\s+`} {
		_, ok := compileRE2(expr)
		require.False(t, ok, expr)
	}
}
