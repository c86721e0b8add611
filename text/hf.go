package text

import "strings"

// HF is a tokenizer with the pipeline of the Hugging Face tokenizers library
// (huggingface/tokenizers tokenizers/src/tokenizer/mod.rs): added tokens, normalizer,
// pre-tokenizer, model, post-processor and decoder, as read from a tokenizer.json or built from
// GPT-2 style vocab.json + merges.txt files.
type HF struct {
	added   *addedVocab
	norm    normalizer
	pre     preTokenizer
	model   model
	post    postProcessor
	dec     decoder
	special SpecialTokens
}

var _ Tokenizer = (*HF)(nil)

// Encode is encode(text, add_special_tokens=False).
func (t *HF) Encode(text string) []int { return t.encode(text, false) }

// EncodeSpecial is encode(text, add_special_tokens=True): the post-processor's tokens (BOS/EOS,
// [CLS]/[SEP], ...) around the text's.
func (t *HF) EncodeSpecial(text string) []int { return t.encode(text, true) }

func (t *HF) encode(text string, addSpecial bool) []int {
	ps := []piece{{n: newNstr(text)}}
	if t.added != nil {
		ps = t.added.split(ps, t.added.rawTrie)
	}
	if t.norm != nil {
		normalizeEach(ps, t.norm.normalize)
	}
	if t.added != nil {
		ps = t.added.split(ps, t.added.normTrie)
	}
	// Drop pieces normalization emptied.
	kept := ps[:0]
	for _, p := range ps {
		if p.tok || !p.n.empty() {
			kept = append(kept, p)
		}
	}
	ps = kept
	if t.pre != nil {
		ps = t.pre.preTokenize(ps)
	}
	var ids []int
	for _, p := range ps {
		if p.tok {
			ids = append(ids, p.ids...)
			continue
		}
		ids = append(ids, t.model.tokenize(p.n.String())...)
	}
	if addSpecial && t.post != nil {
		ids = t.post.process(ids)
	}
	if ids == nil {
		ids = []int{}
	}
	return ids
}

// Decode is decode(ids, skip_special_tokens=False); unknown ids are skipped.
func (t *HF) Decode(ids []int) string { return t.decode(ids, false) }

// DecodeSkipSpecial is decode(ids, skip_special_tokens=True).
func (t *HF) DecodeSkipSpecial(ids []int) string { return t.decode(ids, true) }

func (t *HF) decode(ids []int, skipSpecial bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		s, ok := "", false
		if t.added != nil {
			s, ok = t.added.decodeToken(id)
		}
		if !ok {
			s, ok = t.model.idToToken(id)
		}
		if !ok {
			continue
		}
		if skipSpecial && t.added != nil && t.added.special[s] {
			continue
		}
		tokens = append(tokens, s)
	}
	if t.dec == nil {
		return strings.Join(tokens, " ")
	}
	if len(tokens) == 0 {
		return ""
	}
	return strings.Join(t.dec.decodeChain(tokens), "")
}

// VocabSize is one past the largest id of the model vocabulary and the added tokens.
func (t *HF) VocabSize() int {
	n := t.model.size()
	if t.added != nil {
		for id := range t.added.byID {
			n = max(n, id+1)
		}
	}
	return n
}

// Special returns the ids of the BOS, EOS, padding and unknown tokens (-1 when absent).
func (t *HF) Special() SpecialTokens { return t.special }

// TokenToID returns the id of a token of the vocabulary or of the added tokens.
func (t *HF) TokenToID(token string) (int, bool) {
	if t.added != nil {
		if id, ok := t.added.byContent[token]; ok {
			return id, true
		}
	}
	return t.model.tokenToID(token)
}

// IDToToken returns the token string of an id.
func (t *HF) IDToToken(id int) (string, bool) {
	if t.added != nil {
		if tok, ok := t.added.byID[id]; ok {
			return tok.Content, true
		}
	}
	return t.model.idToToken(id)
}
