package text

import "sort"

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedVocab recognises added tokens in text (huggingface/tokenizers
// tokenizers/src/tokenizer/added_vocabulary.rs): first the tokens with normalized=false in the raw
// text, then, after normalization of what is left, the tokens with normalized=true (matched in their
// normalized form). Matching is leftmost-longest, non-overlapping.
type addedVocab struct {
	byID       map[int]*addedToken
	byContent  map[string]int
	normalized map[int]string // normalized form of normalized=true tokens, when it differs
	rawTrie    *byteTrie
	normTrie   *byteTrie
	special    map[string]bool
}

// newAddedVocab registers the tokens in file order as the reference's deserializer does
// (huggingface/tokenizers tokenizers/src/tokenizer/serialization.rs, AddedVocabulary::add_tokens):
// a token takes the id its content already has (in the added tokens, then the model vocabulary),
// else the next free id after the model's; the "id" written in the file is not used.
func newAddedVocab(tokens []addedToken, m model, norm normalizer) *addedVocab {
	a := &addedVocab{byID: map[int]*addedToken{}, byContent: map[string]int{}, normalized: map[int]string{},
		special: map[string]bool{}}
	maxID := -1
	for i := range tokens {
		t := tokens[i]
		if t.Content == "" {
			continue
		}
		if id, ok := a.byContent[t.Content]; ok && *a.byID[id] == t {
			continue
		}
		id, ok := a.byContent[t.Content]
		if !ok && m != nil {
			id, ok = m.tokenToID(t.Content)
		}
		if !ok {
			id = m.size()
			if maxID >= id || id == 0 {
				id = maxID + 1
			}
		}
		maxID = max(maxID, id)
		t.ID = id
		a.byID[id] = &t
		a.byContent[t.Content] = id
		if t.Special {
			a.special[t.Content] = true
		}
		delete(a.normalized, id)
		if t.Normalized && norm != nil {
			if s := norm.normalize(newNstr(t.Content)).String(); s != t.Content {
				a.normalized[id] = s
			}
		}
	}
	for id, t := range a.byID {
		if t.Normalized {
			if a.normTrie == nil {
				a.normTrie = newByteTrie()
			}
			s := t.Content
			if n, ok := a.normalized[id]; ok {
				s = n
			}
			a.normTrie.insert(s, id)
		} else {
			if a.rawTrie == nil {
				a.rawTrie = newByteTrie()
			}
			a.rawTrie.insert(t.Content, id)
		}
	}
	return a
}

// decodeToken is the string an added token contributes when decoding: its normalized form when
// it was matched normalized, so that the decoder can invert the normalization.
func (a *addedVocab) decodeToken(id int) (string, bool) {
	t, ok := a.byID[id]
	if !ok {
		return "", false
	}
	if n, ok := a.normalized[id]; ok {
		return n, true
	}
	return t.Content, true
}

// split extracts the added tokens of trie from every untokenized piece.
func (a *addedVocab) split(ps []piece, trie *byteTrie) []piece {
	if trie == nil {
		return ps
	}
	out := make([]piece, 0, len(ps))
	for _, p := range ps {
		if p.tok {
			out = append(out, p)
			continue
		}
		for _, q := range a.findMatches(p.n, trie) {
			if !q.n.empty() {
				out = append(out, q)
			}
		}
	}
	return out
}

func (a *addedVocab) findMatches(n nstr, trie *byteTrie) []piece {
	r := n.r
	// Leftmost-longest non-overlapping matches, on rune positions.
	type match struct{ start, end, id int }
	var ms []match
	s := string(r)
	// byte offset -> rune index
	offs := make([]int, 0, len(r)+1)
	b := 0
	for _, c := range r {
		offs = append(offs, b)
		b += len(string(c))
	}
	offs = append(offs, b)
	runeAt := func(byteOff int) int { return sort.SearchInts(offs, byteOff) }
	for i := 0; i < len(r); {
		l, id := trie.longest(s[offs[i]:])
		if l == 0 {
			i++
			continue
		}
		j := runeAt(offs[i] + l)
		ms = append(ms, match{i, j, id})
		i = j
	}
	if len(ms) == 0 {
		return []piece{{n: n}}
	}
	var out []piece
	startOffset := 0
	for _, m := range ms {
		t := a.byID[m.id]
		start, stop := m.start, m.end
		if t.SingleWord {
			startSpace := start == 0 || !isWordChar(r[start-1])
			stopSpace := stop == len(r) || !isWordChar(r[stop])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if t.LStrip {
			ns := start
			for ns > 0 && isRustWhitespace(r[ns-1]) {
				ns--
			}
			start = max(ns, startOffset)
		}
		if t.RStrip {
			for stop < len(r) && isRustWhitespace(r[stop]) {
				stop++
			}
		}
		if startOffset < start {
			out = append(out, piece{n: n.slice(startOffset, start)})
		}
		out = append(out, piece{n: n.slice(start, stop), ids: []int{m.id}, tok: true})
		startOffset = stop
	}
	if startOffset != len(r) {
		out = append(out, piece{n: n.slice(startOffset, len(r))})
	}
	return out
}
