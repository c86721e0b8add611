package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"

	"github.com/reelml/reel/internal/safeio"
)

// Audit category names, in the order of AuditReport.Categories.
const (
	AuditCounts   = "counts"
	AuditSpatial  = "spatial"
	AuditTemporal = "temporal"
	AuditNegation = "negation"
)

// AuditTopWords is how many of the most frequent matched words AuditTexts
// reports per category.
const AuditTopWords = 5

var auditWords = map[string]string{}

func init() {
	add := func(cat, words string) {
		for _, w := range strings.Fields(words) {
			if c, dup := auditWords[w]; dup {
				panic(fmt.Sprintf("data: audit word %q in both %s and %s", w, c, cat))
			}
			auditWords[w] = cat
		}
	}
	add(AuditCounts, `zero one two three four five six seven eight nine ten eleven twelve
		thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty
		thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand thousands
		million millions dozen dozens pair pairs couple several few many multiple both
		single twice thrice`)
	add(AuditSpatial, `left right leftmost rightmost above below under underneath beneath over
		behind front beside between among near nearby next adjacent opposite top bottom
		upper lower middle center centre corner inside outside within across around along
		against atop toward towards far closer closest farther farthest`)
	add(AuditTemporal, `before after then when while during until till first last finally
		eventually once again later earlier now soon already meanwhile afterward afterwards
		previously suddenly begin begins began beginning start starts started starting
		end ends ended ending moment moments second seconds minute minutes hour hours`)
	add(AuditNegation, `no not never none nothing nobody nowhere neither nor without cannot
		dont doesnt didnt isnt arent wasnt werent cant couldnt wont wouldnt shouldnt
		hasnt havent hadnt aint`)
}

// auditCategories lists the categories in report order.
var auditCategories = []string{AuditCounts, AuditSpatial, AuditTemporal, AuditNegation}

// AuditReport is the result of auditing a set of texts.
type AuditReport struct {
	Texts      int             `json:"texts"`      // number of texts audited
	Categories []AuditCategory `json:"categories"` // counts, spatial, temporal, negation, in this order
}

// AuditCategory is one category of an AuditReport.
type AuditCategory struct {
	Name     string      `json:"name"`
	Texts    int         `json:"texts"`    // texts with at least one word of the category
	Fraction float64     `json:"fraction"` // Texts / AuditReport.Texts (0 if there are no texts)
	Top      []WordCount `json:"top"`      // the most frequent matched words (at most AuditTopWords), by occurrences
}

// WordCount is a matched word and how many times it occurs in all texts.
type WordCount struct {
	Word  string `json:"word"`
	Count int    `json:"count"`
}

// Category returns the category with the given name.
func (r AuditReport) Category(name string) (AuditCategory, bool) {
	for _, c := range r.Categories {
		if c.Name == name {
			return c, true
		}
	}
	return AuditCategory{}, false
}

// auditTokens lowercases s and splits it into words as described at AuditTexts.
func auditTokens(s string) []string {
	s = strings.ToLower(strings.ReplaceAll(s, "’", "'"))
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	out := fields[:0]
	for _, f := range fields {
		if f = strings.Trim(f, "'"); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// auditCategory returns the category of a token, or "" if it has none.
func auditCategory(tok string) string {
	if c, ok := auditWords[tok]; ok {
		return c
	}
	if strings.HasSuffix(tok, "n't") {
		return AuditNegation
	}
	if strings.IndexFunc(tok, unicode.IsDigit) >= 0 {
		return AuditCounts
	}
	return ""
}

// auditor accumulates an AuditReport one text at a time.
type auditor struct {
	texts int
	hits  map[string]int            // category -> texts with a match
	words map[string]map[string]int // category -> word -> occurrences
}

func newAuditor() *auditor {
	a := &auditor{hits: map[string]int{}, words: map[string]map[string]int{}}
	for _, c := range auditCategories {
		a.words[c] = map[string]int{}
	}
	return a
}

func (a *auditor) add(text string) {
	a.texts++
	seen := map[string]bool{}
	for _, tok := range auditTokens(text) {
		if c := auditCategory(tok); c != "" {
			a.words[c][tok]++
			if !seen[c] {
				seen[c] = true
				a.hits[c]++
			}
		}
	}
}

func (a *auditor) report() AuditReport {
	r := AuditReport{Texts: a.texts}
	for _, c := range auditCategories {
		cat := AuditCategory{Name: c, Texts: a.hits[c], Top: []WordCount{}}
		if a.texts > 0 {
			cat.Fraction = float64(cat.Texts) / float64(a.texts)
		}
		for w, n := range a.words[c] {
			cat.Top = append(cat.Top, WordCount{w, n})
		}
		sort.Slice(cat.Top, func(i, j int) bool {
			if cat.Top[i].Count != cat.Top[j].Count {
				return cat.Top[i].Count > cat.Top[j].Count
			}
			return cat.Top[i].Word < cat.Top[j].Word
		})
		if len(cat.Top) > AuditTopWords {
			cat.Top = cat.Top[:AuditTopWords]
		}
		r.Categories = append(r.Categories, cat)
	}
	return r
}

// AuditTexts reports, for each category (counts, spatial, temporal,
// negation), how many texts contain at least one of its words, as a count and
// a fraction, and its most frequent words (by occurrences over all texts).
//
// The audit measures "reporting bias" in caption / QA text: people describing an
// image or a video rarely state what is obvious to them — how many things
// there are, where they are relative to each other, in which order events
// happen, or what is absent (Misra et al., "Seeing through the Human
// Reporting Bias", CVPR 2016; Paik et al., "The World of an Octopus",
// EMNLP 2021). A model trained on such text sees few examples of these
// skills; the audit reports how few, as the fraction of texts that contain
// at least one word of each category.
//
// Matching is case-insensitive and on whole words only: a text is lowercased
// and split into tokens at every rune that is neither a letter, a digit nor
// an apostrophe (' or ’); apostrophes at the ends of a token are dropped.
// Multi-word phrases are not matched as such ("in front of" counts through
// "front"), and very frequent, mostly non-spatial prepositions ("in", "on",
// "at", "by") are left out so that the spatial fraction stays informative.
// The categories and their words:
//
//   - counts: any token containing a digit ("3", "1990s", "2nd"), the number
//     words zero … twenty, thirty … ninety, hundred(s), thousand(s),
//     million(s), and the quantity words dozen(s), pair(s), couple, several,
//     few, many, multiple, both, single, twice, thrice.
//   - spatial: left, right, leftmost, rightmost, above, below, under,
//     underneath, beneath, over, behind, front, beside, between, among, near,
//     nearby, next, adjacent, opposite, top, bottom, upper, lower, middle,
//     center, centre, corner, inside, outside, within, across, around, along,
//     against, atop, toward(s), far, closer, closest, farther, farthest.
//   - temporal: before, after, then, when, while, during, until, till, first,
//     last, finally, eventually, once, again, later, earlier, now, soon,
//     already, meanwhile, afterward(s), previously, suddenly, begin(s),
//     began, beginning, start(s), started, starting, end(s), ended, ending,
//     moment(s), second(s), minute(s), hour(s).
//   - negation: no, not, never, none, nothing, nobody, nowhere, neither, nor,
//     without, cannot, any token ending in "n't" (don't, isn't, "n't" from
//     Penn-Treebank tokenisation), and the apostrophe-less forms dont,
//     doesnt, didnt, isnt, arent, wasnt, werent, cant, couldnt, wont,
//     wouldnt, shouldnt, hasnt, havent, hadnt, aint.
//
// The lists are disjoint (each word belongs to one category); some words are
// ambiguous ("right" answer, "over" in "game over", "one" as a pronoun), so a
// fraction can somewhat overstate the intended mentions.
func AuditTexts(texts []string) AuditReport {
	a := newAuditor()
	for _, t := range texts {
		a.add(t)
	}
	return a.report()
}

// auditFields are the string fields of a JSONL object whose values are
// audited, joined with a space, as one text.
var auditFields = []string{"caption", "text", "question", "answer"}

// auditTurnFields are the fields holding an array of conversation turns.
var auditTurnFields = []string{"conversations", "messages"}

// AuditJSONL audits a caption / QA JSONL file with AuditTexts. Each non-blank
// line must be a JSON object; its text is the values of the fields "caption",
// "text", "question" and "answer" (strings, or numbers such as a count
// answer) and the turns of "conversations" or "messages" (arrays of objects
// with a "value" or "content" string, as in LLaVA- and chat-style data; a
// "content" array of {"text": ...} parts is accepted too), joined with a
// space. Errors are one line naming the file and line, e.g.
// `caps.jsonl:7: invalid JSON: ...`.
func AuditJSONL(path string) (AuditReport, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return AuditReport{}, err
	}
	defer f.Close()
	a := newAuditor()
	rd := bufio.NewReader(f)
	for line := 1; ; line++ {
		b, err := rd.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return AuditReport{}, err // names the file
		}
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
		}
		if b = bytes.TrimSpace(b); len(b) > 0 {
			text, perr := auditLine(b)
			if perr != nil {
				return AuditReport{}, fmt.Errorf("%s:%d: %w", path, line, perr)
			}
			a.add(text)
		}
		if err != nil { // io.EOF
			break
		}
	}
	if a.texts == 0 {
		return AuditReport{}, fmt.Errorf("%s: no texts (the file is empty)", path)
	}
	return a.report(), nil
}

// auditLine extracts the text of one JSONL line.
func auditLine(b []byte) (string, error) {
	if b[0] != '{' {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return "", fmt.Errorf("invalid JSON: %w", err)
		}
		return "", fmt.Errorf("invalid JSON: want an object, got %s", jsonKind(v))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return "", fmt.Errorf("invalid JSON: %w", err)
	}
	var parts []string
	found := false
	for _, k := range auditFields {
		raw, ok := obj[k]
		if !ok {
			continue
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return "", fmt.Errorf("invalid JSON: field %q: %w", k, err)
		}
		switch v := v.(type) {
		case nil:
			continue
		case string:
			parts = append(parts, v)
		case json.Number:
			parts = append(parts, v.String())
		default:
			return "", fmt.Errorf("field %q is %s, want a string", k, jsonKind(v))
		}
		found = true
	}
	for _, k := range auditTurnFields {
		raw, ok := obj[k]
		if !ok {
			continue
		}
		var turns []map[string]any
		if err := json.Unmarshal(raw, &turns); err != nil {
			return "", fmt.Errorf("field %q: want an array of objects with a \"value\" or \"content\" string", k)
		}
		for _, t := range turns {
			for _, tk := range []string{"value", "content"} {
				switch v := t[tk].(type) {
				case string:
					parts, found = append(parts, v), true
				case []any: // [{"type": "text", "text": "..."}, {"type": "image"}]
					for _, p := range v {
						if p, ok := p.(map[string]any); ok {
							if s, ok := p["text"].(string); ok {
								parts, found = append(parts, s), true
							}
						}
					}
				}
			}
		}
	}
	if !found {
		return "", fmt.Errorf("no text field (want one of %s, %s)", strings.Join(auditFields, ", "), strings.Join(auditTurnFields, ", "))
	}
	return strings.Join(parts, " "), nil
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
