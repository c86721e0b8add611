package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func auditCat(t *testing.T, r AuditReport, name string) AuditCategory {
	t.Helper()
	c, ok := r.Category(name)
	require.Truef(t, ok, "category %q missing", name)
	return c
}

func TestAuditTextsFractions(t *testing.T) {
	r := AuditTexts([]string{
		"A dog runs across the park.",          // spatial (across)
		"Three cats sit on a sofa.",            // counts
		"The man is not smiling, then leaves.", // negation, temporal
		"A red car.",                           // nothing
	})
	require.Equal(t, 4, r.Texts)
	require.Len(t, r.Categories, 4)
	for i, name := range []string{AuditCounts, AuditSpatial, AuditTemporal, AuditNegation} {
		require.Equal(t, name, r.Categories[i].Name)
		require.Equal(t, 1, r.Categories[i].Texts, name)
		require.Equal(t, 0.25, r.Categories[i].Fraction, name)
	}
	require.Equal(t, []WordCount{{"three", 1}}, auditCat(t, r, AuditCounts).Top)
	require.Equal(t, []WordCount{{"across", 1}}, auditCat(t, r, AuditSpatial).Top)
}

func TestAuditTextsCaseInsensitive(t *testing.T) {
	r := AuditTexts([]string{"TWO Dogs", "two dogs", "Left of it", "NEVER"})
	require.Equal(t, 0.5, auditCat(t, r, AuditCounts).Fraction)
	require.Equal(t, []WordCount{{"two", 2}}, auditCat(t, r, AuditCounts).Top)
	require.Equal(t, 0.25, auditCat(t, r, AuditSpatial).Fraction)
	require.Equal(t, 0.25, auditCat(t, r, AuditNegation).Fraction)
}

func TestAuditTextsWholeWords(t *testing.T) {
	// Listed words inside longer words must not match: "tone" has "one",
	// "often" "ten", "snow" and "know" "no", "leftover" "left", "notice"
	// "not", "another" "then", "bottomless" "bottom".
	r := AuditTexts([]string{"a tone often heard", "snow and know", "leftover notice", "another bottomless mug"})
	for _, c := range r.Categories {
		require.Zerof(t, c.Texts, "%s matched %v", c.Name, c.Top)
		require.Empty(t, c.Top)
	}
	// A phrase counts through its single words: "in front of" through "front".
	r = AuditTexts([]string{"a cat in front of the tv", "in the box, on the table"})
	require.Equal(t, 1, auditCat(t, r, AuditSpatial).Texts)
	require.Equal(t, []WordCount{{"front", 1}}, auditCat(t, r, AuditSpatial).Top)
	// Hyphens and punctuation separate words.
	r = AuditTexts([]string{"twenty-one people", "(left)", "top-down"})
	require.Equal(t, 1, auditCat(t, r, AuditCounts).Texts)
	require.Equal(t, []WordCount{{"one", 1}, {"twenty", 1}}, auditCat(t, r, AuditCounts).Top)
	require.Equal(t, 2, auditCat(t, r, AuditSpatial).Texts)
}

func TestAuditTextsDigits(t *testing.T) {
	r := AuditTexts([]string{"there are 3 apples", "the 2nd car", "in the 1990s", "a b c", "room B12"})
	c := auditCat(t, r, AuditCounts)
	require.Equal(t, 4, c.Texts)
	require.InDelta(t, 0.8, c.Fraction, 1e-12)
	require.Len(t, c.Top, 4)
}

func TestAuditTextsNegation(t *testing.T) {
	texts := []string{
		"He doesn't move.",       // n't
		"She DIDN’T jump.",       // curly apostrophe, upper case
		"it is n't there",        // Penn-Treebank tokenisation
		"they dont care",         // apostrophe-less
		"A dog without a leash.", // listed word
		"nothing here",           // listed word
		"A dog notices the ball", // no negation
		"'quoted' words",         // no negation
	}
	r := AuditTexts(texts)
	c := auditCat(t, r, AuditNegation)
	require.Equal(t, 6, c.Texts)
	require.Equal(t, 0.75, c.Fraction)
	var words []string
	for _, wc := range c.Top {
		words = append(words, wc.Word)
	}
	require.Subset(t, words, []string{"didn't", "doesn't"})
}

func TestAuditTextsTopWords(t *testing.T) {
	r := AuditTexts([]string{
		"after after after then then before",
		"after then while during until later now",
	})
	c := auditCat(t, r, AuditTemporal)
	require.Equal(t, 2, c.Texts)
	require.Equal(t, 1.0, c.Fraction)
	// By count, then alphabetically; at most AuditTopWords.
	require.Equal(t, []WordCount{{"after", 4}, {"then", 3}, {"before", 1}, {"during", 1}, {"later", 1}}, c.Top)
}

func TestAuditTextsEmpty(t *testing.T) {
	r := AuditTexts(nil)
	require.Zero(t, r.Texts)
	require.Len(t, r.Categories, 4)
	for _, c := range r.Categories {
		require.Zero(t, c.Fraction)
		require.NotNil(t, c.Top)
	}
}

func TestAuditWordListsDisjointAndLowercase(t *testing.T) {
	// init panics on a word listed twice; check the lists are lower-case words.
	for w, c := range auditWords {
		require.Equal(t, strings.ToLower(w), w)
		require.Equal(t, []string{w}, auditTokens(w), "%s word %q must be one token", c, w)
		require.Equal(t, c, auditCategory(w))
	}
}

func writeAudit(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "caps.jsonl")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestAuditJSONL(t *testing.T) {
	p := writeAudit(t, "\ufeff"+`{"caption": "Two dogs play."}`+"\n"+
		"\n   \n"+
		`{"question": "How many cats are there?", "answer": 3, "image": "x.png"}`+"\r\n"+
		`{"text": "A cat sits behind the door", "caption": null}`+"\n"+
		`{"conversations": [{"from": "human", "value": "<image>\nIs it raining?"}, {"from": "gpt", "value": "No."}]}`+"\n"+
		`{"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What happens first?"}]}, {"role": "assistant", "content": "A door opens."}]}`+"\n"+
		`{"caption": "A bird.", "text": "It sings."}`) // no final newline
	r, err := AuditJSONL(p)
	require.NoError(t, err)
	require.Equal(t, 6, r.Texts)
	require.Equal(t, 2, auditCat(t, r, AuditCounts).Texts) // two; many + 3
	require.Equal(t, []WordCount{{"3", 1}, {"many", 1}, {"two", 1}}, auditCat(t, r, AuditCounts).Top)
	require.Equal(t, 1, auditCat(t, r, AuditSpatial).Texts)
	require.Equal(t, 1, auditCat(t, r, AuditTemporal).Texts)
	require.Equal(t, 1, auditCat(t, r, AuditNegation).Texts)
	require.InDelta(t, 1.0/3, auditCat(t, r, AuditCounts).Fraction, 1e-12)
}

func TestAuditJSONLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"bad JSON", `{"caption": "ok"}` + "\n\n" + `{"caption": "oops"` + "\n", []string{"caps.jsonl:3: invalid JSON: "}},
		{"not an object", `{"caption": "ok"}` + "\n" + `["a", "b"]` + "\n", []string{"caps.jsonl:2: invalid JSON: want an object, got an array"}},
		{"garbage", "caption: hello\n", []string{"caps.jsonl:1: invalid JSON: "}},
		{"trailing data", `{"caption": "a"} {"caption": "b"}`, []string{"caps.jsonl:1: invalid JSON: "}},
		{"no text field", `{"caption": "ok"}` + "\n" + `{"image": "a.png", "label": 3}` + "\n", []string{"caps.jsonl:2: no text field", "caption, text, question, answer"}},
		{"only null", `{"caption": null}`, []string{"caps.jsonl:1: no text field"}},
		{"wrong type", `{"caption": ["a", "b"]}`, []string{"caps.jsonl:1: field \"caption\" is an array, want a string"}},
		{"bad turns", `{"conversations": "hi"}`, []string{"caps.jsonl:1: field \"conversations\": want an array of objects"}},
		{"empty", "", []string{"caps.jsonl: no texts"}},
		{"blank", "\n  \n\n", []string{"caps.jsonl: no texts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AuditJSONL(writeAudit(t, tc.content))
			require.Error(t, err)
			require.NotContains(t, err.Error(), "\n")
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := AuditJSONL(filepath.Join(t.TempDir(), "missing.jsonl"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), "missing.jsonl")
}
