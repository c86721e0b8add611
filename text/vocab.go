package text

import (
	"strings"
)

// Special token ids, identical in every Vocab.
const (
	PadID = 0
	BOSID = 1
	SEPID = 2
	EOSID = 3
	UNKID = 4
)

var specialWords = []string{"<pad>", "<bos>", "<sep>", "<eos>", "<unk>"}

// Vocab is a word-level vocabulary (reel's own, for the synthetic scene and video tasks; Words
// puts it behind the Tokenizer interface). The first five ids are the special
// tokens PadID, BOSID, SEPID, EOSID and UNKID. It is immutable after
// construction and safe for concurrent use.
type Vocab struct {
	words []string
	ids   map[string]int
}

// NewVocab returns a vocabulary with the special tokens first, followed by
// words in the given order; duplicates (and words equal to a special token)
// are dropped, keeping the first occurrence.
func NewVocab(words []string) *Vocab {
	v := &Vocab{ids: make(map[string]int, len(words)+len(specialWords))}
	for _, w := range specialWords {
		v.add(w)
	}
	for _, w := range words {
		v.add(w)
	}
	return v
}

func (v *Vocab) add(w string) {
	if _, ok := v.ids[w]; ok {
		return
	}
	v.ids[w] = len(v.words)
	v.words = append(v.words, w)
}

// ID returns the id of word, or UNKID if the word is unknown.
func (v *Vocab) ID(word string) int {
	if id, ok := v.ids[word]; ok {
		return id
	}
	return UNKID
}

// Word returns the word with the given id, or "<unk>" if id is out of range.
func (v *Vocab) Word(id int) string {
	if id < 0 || id >= len(v.words) {
		return specialWords[UNKID]
	}
	return v.words[id]
}

// Size returns the number of ids, specials included.
func (v *Vocab) Size() int { return len(v.words) }

// Has reports whether word is in the vocabulary.
func (v *Vocab) Has(word string) bool {
	_, ok := v.ids[word]
	return ok
}

// Words returns a copy of all words in id order, specials included.
func (v *Vocab) Words() []string { return append([]string(nil), v.words...) }

// Tokenize lowercases s, separates "?" into its own token and splits on
// white space.
func Tokenize(s string) []string {
	s = strings.ToLower(s)
	s = strings.ReplaceAll(s, "?", " ? ")
	return strings.Fields(s)
}
