package text

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/reelml/reel/internal/safeio"
)

// LoadVocabMerges reads a GPT-2 style vocab.json (token: id) and merges.txt ("a b" per line
// after an optional #version header) into the pipeline transformers' GPT2TokenizerFast builds
// from them: byte-level BPE with the GPT-2 split, no prefix space, byte-level decoding, and
// <|endoftext|> as a special token (and BOS, EOS and unknown) when the vocabulary has it.
func LoadVocabMerges(vocabPath, mergesPath string) (*HF, error) {
	vb, err := safeio.ReadFile(vocabPath, safeio.TokenizerLimit)
	if err != nil {
		return nil, err
	}
	var v map[string]int
	if err := json.Unmarshal(vb, &v); err != nil {
		return nil, fmt.Errorf("%s: expected a JSON object of token: id: %w", vocabPath, err)
	}
	for tok, id := range v {
		if id < 0 {
			return nil, fmt.Errorf("%s: token %q has negative id %d", vocabPath, tok, id)
		}
	}
	mb, err := safeio.ReadFile(mergesPath, safeio.TokenizerLimit)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(mb))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if l == "" {
			continue
		}
		lines = append(lines, l)
	}
	merges, err := mergeLines("merges", lines)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", mergesPath, strings.TrimPrefix(err.Error(), "merges"))
	}
	b, _ := newBPE(v, nil)
	if err := b.setMerges(merges); err != nil {
		return nil, fmt.Errorf("%s: %v", mergesPath, strings.TrimPrefix(err.Error(), "model."))
	}
	t := &HF{model: b, pre: byteLevelPre{addPrefixSpace: false, useRegex: true}, dec: byteLevelDec{},
		post: templatePost{}, special: SpecialTokens{BOS: -1, EOS: -1, Pad: -1, Unk: -1}}
	var added []addedToken
	if id, ok := v["<|endoftext|>"]; ok {
		added = append(added, addedToken{ID: id, Content: "<|endoftext|>", Special: true})
		t.special = SpecialTokens{BOS: id, EOS: id, Pad: -1, Unk: id}
	}
	t.added = newAddedVocab(added, b, nil)
	return t, nil
}
