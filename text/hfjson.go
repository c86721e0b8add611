package text

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/reelml/reel/internal/safeio"
)

// fieldError is one bad field of a tokenizer file.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func bad(field, format string, args ...any) error {
	return &fieldError{field, fmt.Sprintf(format, args...)}
}

type obj map[string]json.RawMessage

func (o obj) has(k string) bool {
	v, ok := o[k]
	return ok && string(v) != "null"
}

func (o obj) str(field, k, def string) (string, error) {
	if !o.has(k) {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(o[k], &s); err != nil {
		return "", bad(field+"."+k, "expected a string, got %s", short(o[k]))
	}
	return s, nil
}

func (o obj) boolean(field, k string, def bool) (bool, error) {
	if !o.has(k) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(o[k], &b); err != nil {
		return false, bad(field+"."+k, "expected true or false, got %s", short(o[k]))
	}
	return b, nil
}

func (o obj) integer(field, k string, def int) (int, error) {
	if !o.has(k) {
		return def, nil
	}
	var n int
	if err := json.Unmarshal(o[k], &n); err != nil {
		return 0, bad(field+"."+k, "expected an integer, got %s", short(o[k]))
	}
	return n, nil
}

func (o obj) char(field, k string, def rune) (rune, error) {
	s, err := o.str(field, k, string(def))
	if err != nil {
		return 0, err
	}
	if utf8.RuneCountInString(s) != 1 {
		return 0, bad(field+"."+k, "expected a single character, got %q", s)
	}
	r, _ := utf8.DecodeRuneInString(s)
	return r, nil
}

func short(b []byte) string {
	s := string(b)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

func asObj(field string, raw json.RawMessage) (obj, error) {
	var o obj
	if err := json.Unmarshal(raw, &o); err != nil || o == nil {
		return nil, bad(field, "expected an object, got %s", short(raw))
	}
	return o, nil
}

func asList(field string, raw json.RawMessage) ([]json.RawMessage, error) {
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, bad(field, "expected a list, got %s", short(raw))
	}
	return l, nil
}

func typeOf(field string, o obj) (string, error) {
	t, err := o.str(field, "type", "")
	if err != nil {
		return "", err
	}
	if t == "" {
		return "", bad(field+".type", "missing")
	}
	return t, nil
}

// LoadTokenizerJSON reads a Hugging Face tokenizer.json.
func LoadTokenizerJSON(path string) (*HF, error) {
	b, err := safeio.ReadFile(path, safeio.TokenizerLimit)
	if err != nil {
		return nil, err
	}
	t, err := parseTokenizerJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func parseTokenizerJSON(b []byte) (*HF, error) {
	var root obj
	if err := json.Unmarshal(b, &root); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("not valid JSON at byte %d: %w", se.Offset, err)
		}
		return nil, fmt.Errorf("expected a tokenizer.json object: %w", err)
	}
	if !root.has("model") {
		return nil, bad("model", "missing")
	}
	t := &HF{}
	var err error
	if root.has("normalizer") {
		if t.norm, err = parseNormalizer("normalizer", root["normalizer"]); err != nil {
			return nil, err
		}
	}
	if root.has("pre_tokenizer") {
		if t.pre, err = parsePreTokenizer("pre_tokenizer", root["pre_tokenizer"]); err != nil {
			return nil, err
		}
	}
	var unkToken string
	if t.model, unkToken, err = parseModel("model", root["model"]); err != nil {
		return nil, err
	}
	var added []addedToken
	if root.has("added_tokens") {
		if err := json.Unmarshal(root["added_tokens"], &added); err != nil {
			return nil, bad("added_tokens", "expected a list of {id, content, special, ...} objects: %v", err)
		}
		for i, a := range added {
			if a.ID < 0 {
				return nil, bad(fmt.Sprintf("added_tokens[%d].id", i), "negative id %d", a.ID)
			}
		}
	}
	t.added = newAddedVocab(added, t.model, t.norm)
	if root.has("post_processor") {
		if t.post, err = parsePost("post_processor", root["post_processor"], t); err != nil {
			return nil, err
		}
	}
	if root.has("decoder") {
		if t.dec, err = parseDecoder("decoder", root["decoder"]); err != nil {
			return nil, err
		}
	}
	t.special = SpecialTokens{BOS: -1, EOS: -1, Pad: -1, Unk: -1}
	if unkToken != "" {
		if id, ok := t.TokenToID(unkToken); ok {
			t.special.Unk = id
		}
	}
	if t.post != nil {
		before, after := t.post.bosEOS()
		if len(before) > 0 {
			t.special.BOS = before[0]
		}
		if len(after) > 0 {
			t.special.EOS = after[len(after)-1]
		}
	}
	return t, nil
}

func parsePattern(field string, raw json.RawMessage) (pattern, error) {
	o, err := asObj(field, raw)
	if err != nil {
		return nil, err
	}
	if o.has("Regex") {
		expr, err := o.str(field, "Regex", "")
		if err != nil {
			return nil, err
		}
		p, err := compileRegex(expr)
		if err != nil {
			return nil, bad(field+".Regex", "cannot compile %q: %v", expr, err)
		}
		return p, nil
	}
	if o.has("String") {
		s, err := o.str(field, "String", "")
		if err != nil {
			return nil, err
		}
		if s == "" {
			return charPattern(func(rune) bool { return false }), nil
		}
		return literalPattern(s)
	}
	return nil, bad(field, `expected {"Regex": ...} or {"String": ...}`)
}

func parseNormalizer(field string, raw json.RawMessage) (normalizer, error) {
	o, err := asObj(field, raw)
	if err != nil {
		return nil, err
	}
	typ, err := typeOf(field, o)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		if !o.has("normalizers") {
			return nil, bad(field+".normalizers", "missing")
		}
		l, err := asList(field+".normalizers", o["normalizers"])
		if err != nil {
			return nil, err
		}
		var s normSequence
		for i, r := range l {
			n, err := parseNormalizer(fmt.Sprintf("%s.normalizers[%d]", field, i), r)
			if err != nil {
				return nil, err
			}
			s = append(s, n)
		}
		return s, nil
	case "NFC":
		return unicodeNorm{norm.NFC}, nil
	case "NFD":
		return unicodeNorm{norm.NFD}, nil
	case "NFKC":
		return unicodeNorm{norm.NFKC}, nil
	case "NFKD":
		return unicodeNorm{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNorm{}, nil
	case "StripAccents":
		return stripAccentsNorm{}, nil
	case "Nmt":
		return nmtNorm{}, nil
	case "ByteLevel":
		return byteLevelNorm{}, nil
	case "Strip":
		l, err := o.boolean(field, "strip_left", true)
		if err != nil {
			return nil, err
		}
		r, err := o.boolean(field, "strip_right", true)
		if err != nil {
			return nil, err
		}
		return stripNorm{l, r}, nil
	case "Prepend":
		s, err := o.str(field, "prepend", "")
		if err != nil {
			return nil, err
		}
		return prependNorm{s}, nil
	case "Replace":
		if !o.has("pattern") {
			return nil, bad(field+".pattern", "missing")
		}
		p, err := parsePattern(field+".pattern", o["pattern"])
		if err != nil {
			return nil, err
		}
		c, err := o.str(field, "content", "")
		if err != nil {
			return nil, err
		}
		return replaceNorm{p, c}, nil
	case "BertNormalizer":
		clean, err := o.boolean(field, "clean_text", true)
		if err != nil {
			return nil, err
		}
		chinese, err := o.boolean(field, "handle_chinese_chars", true)
		if err != nil {
			return nil, err
		}
		lower, err := o.boolean(field, "lowercase", true)
		if err != nil {
			return nil, err
		}
		strip, err := o.boolean(field, "strip_accents", lower) // null: follow lowercase
		if err != nil {
			return nil, err
		}
		return bertNorm{clean, chinese, strip, lower}, nil
	case "Precompiled":
		s, err := o.str(field, "precompiled_charsmap", "")
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, bad(field+".precompiled_charsmap", "not base64: %v", err)
		}
		m, err := parseCharsMap(b)
		if err != nil {
			return nil, bad(field, "%v", err)
		}
		return precompiledNorm{m}, nil
	}
	return nil, bad(field+".type", "unsupported normalizer %q", typ)
}

func parseBehavior(field string, o obj, def string) (splitBehavior, error) {
	s, err := o.str(field, "behavior", def)
	if err != nil {
		return 0, err
	}
	b, ok := behaviorNames[s]
	if !ok {
		return 0, bad(field+".behavior", "expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, got %q", s)
	}
	return b, nil
}

func parsePreTokenizer(field string, raw json.RawMessage) (preTokenizer, error) {
	o, err := asObj(field, raw)
	if err != nil {
		return nil, err
	}
	typ, err := typeOf(field, o)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		if !o.has("pretokenizers") {
			return nil, bad(field+".pretokenizers", "missing")
		}
		l, err := asList(field+".pretokenizers", o["pretokenizers"])
		if err != nil {
			return nil, err
		}
		var s preSequence
		for i, r := range l {
			p, err := parsePreTokenizer(fmt.Sprintf("%s.pretokenizers[%d]", field, i), r)
			if err != nil {
				return nil, err
			}
			s = append(s, p)
		}
		return s, nil
	case "ByteLevel":
		aps, err := o.boolean(field, "add_prefix_space", true)
		if err != nil {
			return nil, err
		}
		re, err := o.boolean(field, "use_regex", true)
		if err != nil {
			return nil, err
		}
		return byteLevelPre{aps, re}, nil
	case "Metaspace":
		return parseMetaspace(field, o)
	case "Split":
		if !o.has("pattern") {
			return nil, bad(field+".pattern", "missing")
		}
		p, err := parsePattern(field+".pattern", o["pattern"])
		if err != nil {
			return nil, err
		}
		b, err := parseBehavior(field, o, "")
		if err != nil {
			return nil, err
		}
		inv, err := o.boolean(field, "invert", false)
		if err != nil {
			return nil, err
		}
		if inv {
			p = invertPattern{p}
		}
		return patternSplit{p, b}, nil
	case "Whitespace":
		return patternSplit{invertPattern{wordRuns{}}, removed}, nil
	case "WhitespaceSplit":
		return patternSplit{charPattern(isRustWhitespace), removed}, nil
	case "BertPreTokenizer":
		return bertPre(), nil
	case "Punctuation":
		b, err := parseBehavior(field, o, "Isolated")
		if err != nil {
			return nil, err
		}
		return patternSplit{charPattern(isPunct), b}, nil
	case "Digits":
		ind, err := o.boolean(field, "individual_digits", false)
		if err != nil {
			return nil, err
		}
		if ind {
			return patternSplit{charPattern(isRustNumeric), isolated}, nil
		}
		return patternSplit{charPattern(isRustNumeric), contiguous}, nil
	case "CharDelimiterSplit":
		d, err := o.char(field, "delimiter", 0)
		if err != nil {
			return nil, err
		}
		return patternSplit{charPattern(func(c rune) bool { return c == d }), removed}, nil
	case "FixedLength":
		n, err := o.integer(field, "length", 5)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return nil, bad(field+".length", "expected a positive length, got %d", n)
		}
		return fixedLengthPre{n}, nil
	}
	return nil, bad(field+".type", "unsupported pre-tokenizer %q", typ)
}

func parseMetaspace(field string, o obj) (metaspacePre, error) {
	rep, err := o.char(field, "replacement", '▁')
	if err != nil {
		return metaspacePre{}, err
	}
	scheme, err := o.str(field, "prepend_scheme", "always")
	if err != nil {
		return metaspacePre{}, err
	}
	m := metaspacePre{replacement: rep}
	switch scheme {
	case "always":
		m.scheme = prependAlways
	case "first":
		m.scheme = prependFirst
	case "never":
		m.scheme = prependNever
	default:
		return m, bad(field+".prepend_scheme", `expected "always", "first" or "never", got %q`, scheme)
	}
	if o.has("add_prefix_space") {
		aps, err := o.boolean(field, "add_prefix_space", true)
		if err != nil {
			return m, err
		}
		if !aps {
			if o.has("prepend_scheme") && m.scheme != prependNever {
				return m, bad(field+".add_prefix_space", "false does not match prepend_scheme %q", scheme)
			}
			m.scheme = prependNever
		}
	}
	if m.split, err = o.boolean(field, "split", true); err != nil {
		return m, err
	}
	return m, nil
}

// parseModel returns the model and the name of its unknown token ("" if none).
func parseModel(field string, raw json.RawMessage) (model, string, error) {
	o, err := asObj(field, raw)
	if err != nil {
		return nil, "", err
	}
	typ, err := o.str(field, "type", "")
	if err != nil {
		return nil, "", err
	}
	if typ == "" { // files without "type" predate it: tell the models apart by their fields
		switch {
		case o.has("merges"):
			typ = "BPE"
		case o.has("continuing_subword_prefix") || o.has("max_input_chars_per_word"):
			typ = "WordPiece"
		case o.has("unk_id") || o.has("byte_fallback"):
			typ = "Unigram"
		default:
			typ = "WordLevel"
		}
	}
	readVocab := func() (map[string]int, error) {
		if !o.has("vocab") {
			return nil, bad(field+".vocab", "missing")
		}
		var v map[string]int
		if err := json.Unmarshal(o["vocab"], &v); err != nil {
			return nil, bad(field+".vocab", "expected an object of token: id, got %s", short(o["vocab"]))
		}
		for tok, id := range v {
			if id < 0 {
				return nil, bad(field+".vocab", "token %q has negative id %d", tok, id)
			}
		}
		return v, nil
	}
	switch typ {
	case "BPE":
		v, err := readVocab()
		if err != nil {
			return nil, "", err
		}
		merges, err := parseMerges(field+".merges", o)
		if err != nil {
			return nil, "", err
		}
		b, _ := newBPE(v, nil)
		if b.unk, err = o.str(field, "unk_token", ""); err != nil {
			return nil, "", err
		}
		b.hasUnk = o.has("unk_token")
		if b.prefix, err = o.str(field, "continuing_subword_prefix", ""); err != nil {
			return nil, "", err
		}
		if b.suffix, err = o.str(field, "end_of_word_suffix", ""); err != nil {
			return nil, "", err
		}
		if b.fuseUnk, err = o.boolean(field, "fuse_unk", false); err != nil {
			return nil, "", err
		}
		if b.byteFallback, err = o.boolean(field, "byte_fallback", false); err != nil {
			return nil, "", err
		}
		if b.ignoreMerges, err = o.boolean(field, "ignore_merges", false); err != nil {
			return nil, "", err
		}
		if o.has("dropout") {
			var d float64
			if err := json.Unmarshal(o["dropout"], &d); err != nil || d < 0 || d > 1 {
				return nil, "", bad(field+".dropout", "expected a probability in [0, 1], got %s", short(o["dropout"]))
			}
			// Dropout only applies to training-time sampling; encoding here is deterministic, as
			// transformers' inference is with dropout None or 0.
		}
		if err := b.setMerges(merges); err != nil {
			return nil, "", bad(field, "%v", strings.TrimPrefix(err.Error(), "model."))
		}
		return b, b.unk, nil
	case "WordPiece":
		v, err := readVocab()
		if err != nil {
			return nil, "", err
		}
		w := &wordPiece{vocab: newVocab(v)}
		unk, err := o.str(field, "unk_token", "[UNK]")
		if err != nil {
			return nil, "", err
		}
		id, ok := v[unk]
		if !ok {
			return nil, "", bad(field+".unk_token", "%q is not in %s.vocab", unk, field)
		}
		w.unkID = id
		if w.prefix, err = o.str(field, "continuing_subword_prefix", "##"); err != nil {
			return nil, "", err
		}
		if w.maxChars, err = o.integer(field, "max_input_chars_per_word", 100); err != nil {
			return nil, "", err
		}
		return w, unk, nil
	case "WordLevel":
		v, err := readVocab()
		if err != nil {
			return nil, "", err
		}
		unk, err := o.str(field, "unk_token", "")
		if err != nil {
			return nil, "", err
		}
		w := &wordLevel{vocab: newVocab(v), unkID: -1}
		if id, ok := v[unk]; ok {
			w.unkID = id
		}
		return w, unk, nil
	case "Unigram":
		if !o.has("vocab") {
			return nil, "", bad(field+".vocab", "missing")
		}
		var entries [][2]json.RawMessage
		if err := json.Unmarshal(o["vocab"], &entries); err != nil {
			return nil, "", bad(field+".vocab", "expected a list of [piece, score] pairs, got %s", short(o["vocab"]))
		}
		pieces := make([]string, len(entries))
		scores := make([]float64, len(entries))
		for i, e := range entries {
			if json.Unmarshal(e[0], &pieces[i]) != nil || json.Unmarshal(e[1], &scores[i]) != nil {
				return nil, "", bad(fmt.Sprintf("%s.vocab[%d]", field, i), "expected [piece, score], got [%s, %s]", short(e[0]), short(e[1]))
			}
		}
		unkID, err := o.integer(field, "unk_id", -1)
		if err != nil {
			return nil, "", err
		}
		if unkID >= len(pieces) || (unkID >= 0 && len(pieces) == 0) {
			return nil, "", bad(field+".unk_id", "%d is outside the vocabulary of %d pieces", unkID, len(pieces))
		}
		bf, err := o.boolean(field, "byte_fallback", false)
		if err != nil {
			return nil, "", err
		}
		u := newUnigram(pieces, scores, unkID, bf)
		unk := ""
		if unkID >= 0 {
			unk = pieces[unkID]
		}
		return u, unk, nil
	}
	return nil, "", bad(field+".type", "unsupported model %q (expected BPE, WordPiece, WordLevel or Unigram)", typ)
}

func parseMerges(field string, o obj) ([][2]string, error) {
	key := field[strings.LastIndexByte(field, '.')+1:]
	if !o.has(key) {
		return nil, bad(field, "missing")
	}
	var lists [][]string // not [][2]string: encoding/json would drop a third token silently
	if err := json.Unmarshal(o[key], &lists); err == nil {
		pairs := make([][2]string, len(lists))
		for i, l := range lists {
			if len(l) != 2 {
				return nil, bad(fmt.Sprintf("%s[%d]", field, i), `expected ["a", "b"], got %d tokens`, len(l))
			}
			pairs[i] = [2]string{l[0], l[1]}
		}
		return pairs, nil
	}
	var lines []string
	if err := json.Unmarshal(o[key], &lines); err == nil {
		return mergeLines(field, lines)
	}
	// Neither form: name the first entry that is neither "a b" nor ["a", "b"].
	var entries []json.RawMessage
	if err := json.Unmarshal(o[key], &entries); err != nil {
		return nil, bad(field, `expected a list of "a b" strings or [a, b] pairs`)
	}
	for i, e := range entries {
		var line string
		var pair [2]string
		var raw []json.RawMessage
		if json.Unmarshal(e, &line) == nil || (json.Unmarshal(e, &raw) == nil && len(raw) == 2 && json.Unmarshal(e, &pair) == nil) {
			continue
		}
		if len(e) > 60 {
			e = append(e[:60:60], "…"...)
		}
		return nil, bad(fmt.Sprintf("%s[%d]", field, i), `expected "a b" or ["a", "b"], got %s`, e)
	}
	return nil, bad(field, `expected a list of "a b" strings or [a, b] pairs, not a mix of both`)
}

// mergeLines splits "a b" merge lines (skipping a "#version" header), as the reference's
// convert_merges_to_hashmap does.
func mergeLines(field string, lines []string) ([][2]string, error) {
	out := make([][2]string, 0, len(lines))
	rank := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "#version") {
			continue
		}
		parts := strings.Split(l, " ")
		if len(parts) != 2 {
			return nil, bad(fmt.Sprintf("%s[%d]", field, rank), `expected "a b", got %q`, l)
		}
		out = append(out, [2]string{parts[0], parts[1]})
		rank++
	}
	return out, nil
}

func parsePost(field string, raw json.RawMessage, t *HF) (postProcessor, error) {
	o, err := asObj(field, raw)
	if err != nil {
		return nil, err
	}
	typ, err := typeOf(field, o)
	if err != nil {
		return nil, err
	}
	pair := func(k string) (int, error) {
		if !o.has(k) {
			return 0, bad(field+"."+k, "missing")
		}
		var p [2]json.RawMessage
		var id int
		if err := json.Unmarshal(o[k], &p); err != nil || json.Unmarshal(p[1], &id) != nil {
			return 0, bad(field+"."+k, "expected [token, id], got %s", short(o[k]))
		}
		return id, nil
	}
	switch typ {
	case "ByteLevel":
		return templatePost{}, nil
	case "BertProcessing", "RobertaProcessing":
		cls, err := pair("cls")
		if err != nil {
			return nil, err
		}
		sep, err := pair("sep")
		if err != nil {
			return nil, err
		}
		return templatePost{[]int{cls}, []int{sep}}, nil
	case "TemplateProcessing":
		return parseTemplate(field, o)
	case "Sequence":
		if !o.has("processors") {
			return nil, bad(field+".processors", "missing")
		}
		l, err := asList(field+".processors", o["processors"])
		if err != nil {
			return nil, err
		}
		var s postSequence
		for i, r := range l {
			p, err := parsePost(fmt.Sprintf("%s.processors[%d]", field, i), r, t)
			if err != nil {
				return nil, err
			}
			s = append(s, p)
		}
		return s, nil
	}
	return nil, bad(field+".type", "unsupported post-processor %q", typ)
}

func parseTemplate(field string, o obj) (postProcessor, error) {
	specials := map[string][]int{}
	if o.has("special_tokens") {
		var st map[string]struct {
			ID  string `json:"id"`
			IDs []int  `json:"ids"`
		}
		if err := json.Unmarshal(o["special_tokens"], &st); err != nil {
			return nil, bad(field+".special_tokens", "expected an object of {id, ids, tokens}: %v", err)
		}
		for k, v := range st {
			specials[k] = v.IDs
		}
	}
	if !o.has("single") {
		return nil, bad(field+".single", "missing")
	}
	items, err := asList(field+".single", o["single"])
	if err != nil {
		return nil, err
	}
	var t templatePost
	seen := false
	for i, it := range items {
		f := fmt.Sprintf("%s.single[%d]", field, i)
		var name string
		isSeq := false
		var s string
		if json.Unmarshal(it, &s) == nil { // "$A", "$B:1", "<s>", "[CLS]:0"
			if j := strings.LastIndexByte(s, ':'); j > 0 {
				s = s[:j]
			}
			if strings.HasPrefix(s, "$") {
				isSeq = true
			} else {
				name = s
			}
		} else {
			var p struct {
				Sequence *struct {
					ID string `json:"id"`
				} `json:"Sequence"`
				SpecialToken *struct {
					ID string `json:"id"`
				} `json:"SpecialToken"`
			}
			if err := json.Unmarshal(it, &p); err != nil || (p.Sequence == nil) == (p.SpecialToken == nil) {
				return nil, bad(f, `expected {"Sequence": {...}} or {"SpecialToken": {...}}, got %s`, short(it))
			}
			if p.Sequence != nil {
				isSeq = true
			} else {
				name = p.SpecialToken.ID
			}
		}
		if isSeq {
			seen = true
			continue
		}
		ids, ok := specials[name]
		if !ok {
			return nil, bad(f, "special token %q is not in %s.special_tokens", name, field)
		}
		if seen {
			t.after = append(t.after, ids...)
		} else {
			t.before = append(t.before, ids...)
		}
	}
	return t, nil
}

func parseDecoder(field string, raw json.RawMessage) (decoder, error) {
	o, err := asObj(field, raw)
	if err != nil {
		return nil, err
	}
	typ, err := typeOf(field, o)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		if !o.has("decoders") {
			return nil, bad(field+".decoders", "missing")
		}
		l, err := asList(field+".decoders", o["decoders"])
		if err != nil {
			return nil, err
		}
		var s decSequence
		for i, r := range l {
			d, err := parseDecoder(fmt.Sprintf("%s.decoders[%d]", field, i), r)
			if err != nil {
				return nil, err
			}
			s = append(s, d)
		}
		return s, nil
	case "ByteLevel":
		return byteLevelDec{}, nil
	case "Metaspace":
		m, err := parseMetaspace(field, o)
		if err != nil {
			return nil, err
		}
		return metaspaceDec{m.replacement, m.scheme}, nil
	case "WordPiece":
		p, err := o.str(field, "prefix", "##")
		if err != nil {
			return nil, err
		}
		c, err := o.boolean(field, "cleanup", true)
		if err != nil {
			return nil, err
		}
		return wordPieceDec{p, c}, nil
	case "BPEDecoder":
		s, err := o.str(field, "suffix", "</w>")
		if err != nil {
			return nil, err
		}
		return bpeDec{s}, nil
	case "ByteFallback":
		return byteFallbackDec{}, nil
	case "Fuse":
		return fuseDec{}, nil
	case "Strip":
		c, err := o.char(field, "content", ' ')
		if err != nil {
			return nil, err
		}
		start, err := o.integer(field, "start", 0)
		if err != nil {
			return nil, err
		}
		stop, err := o.integer(field, "stop", 0)
		if err != nil {
			return nil, err
		}
		return stripDec{c, start, stop}, nil
	case "Replace":
		if !o.has("pattern") {
			return nil, bad(field+".pattern", "missing")
		}
		p, err := parsePattern(field+".pattern", o["pattern"])
		if err != nil {
			return nil, err
		}
		c, err := o.str(field, "content", "")
		if err != nil {
			return nil, err
		}
		return replaceDec{p, c}, nil
	case "CTC":
		pad, err := o.str(field, "pad_token", "<pad>")
		if err != nil {
			return nil, err
		}
		d, err := o.str(field, "word_delimiter_token", "|")
		if err != nil {
			return nil, err
		}
		c, err := o.boolean(field, "cleanup", true)
		if err != nil {
			return nil, err
		}
		return ctcDec{pad, d, c}, nil
	}
	return nil, bad(field+".type", "unsupported decoder %q", typ)
}
