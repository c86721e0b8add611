// Package text holds reel's text tokenizers: the Hugging Face tokenizers pipeline read from a
// tokenizer.json (BPE with byte-level or Metaspace pre-tokenization and Split regexes, WordPiece,
// Unigram, WordLevel; added and special tokens; normalizers, post-processors and decoders),
// SentencePiece .model files, GPT-2 style vocab.json + merges.txt, and reel's own word vocabulary
// (Vocab) behind the same Tokenizer interface.
//
// Nothing is downloaded: Load reads a file or a local model directory.
package text

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/reelml/reel/hub"
	"github.com/reelml/reel/internal/safeio"
)

// Tokenizer turns text into token ids and back.
type Tokenizer interface {
	// Encode is encode(text, add_special_tokens=False): the text's tokens only.
	Encode(text string) []int
	// EncodeSpecial is encode(text, add_special_tokens=True): with the tokens the model expects
	// around a sequence (BOS/EOS, [CLS]/[SEP], ...).
	EncodeSpecial(text string) []int
	// Decode turns ids back into text (special tokens included; unknown ids skipped).
	Decode(ids []int) string
	// VocabSize is one past the largest id the tokenizer can produce.
	VocabSize() int
	// Special returns the ids of the BOS, EOS, padding and unknown tokens.
	Special() SpecialTokens
}

// SpecialTokens are the ids of a tokenizer's special tokens, -1 when it has none.
type SpecialTokens struct {
	BOS, EOS, Pad, Unk int
}

// Load reads a tokenizer from path: a tokenizer.json, a SentencePiece .model, a GPT-2 style
// vocab.json (with merges.txt beside it), or a model directory holding one of them (tokenizer.json
// preferred, then tokenizer.model, then vocab.json + merges.txt). A tokenizer_config.json next to
// the file sets the BOS/EOS/padding/unknown tokens and add_bos_token / add_eos_token.
//
// path may also name a Hugging Face repository ORG/NAME[@REVISION] already in the Hub cache
// (hub.Model).
func Load(path string) (Tokenizer, error) {
	path, err := hub.Model(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	dir, file := path, ""
	if st.IsDir() {
		for _, name := range []string{"tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json"} {
			if _, err := os.Stat(filepath.Join(path, name)); err == nil {
				file = filepath.Join(path, name)
				break
			}
		}
		if file == "" {
			return nil, fmt.Errorf("tokenizer: %s has no tokenizer.json, tokenizer.model or vocab.json + merges.txt", path)
		}
	} else {
		dir, file = filepath.Dir(path), path
	}
	cfg, err := readConfig(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, err
	}
	switch {
	case filepath.Ext(file) == ".model":
		sp, err := LoadSentencePiece(file)
		if err != nil {
			return nil, err
		}
		cfg.applySP(sp)
		return sp, nil
	case strings.HasSuffix(filepath.Base(file), "vocab.json"):
		merges := filepath.Join(filepath.Dir(file), "merges.txt")
		t, err := LoadVocabMerges(file, merges)
		if err != nil {
			return nil, err
		}
		cfg.applyHF(t)
		return t, nil
	default:
		t, err := LoadTokenizerJSON(file)
		if err != nil {
			return nil, err
		}
		cfg.applyHF(t)
		return t, nil
	}
}

// tokenizerConfig is what reel reads of transformers' tokenizer_config.json.
type tokenizerConfig struct {
	path                           string
	bos, eos, pad, unk             *string
	addBOS, addEOS                 *bool
	hasBOS, hasEOS, hasPad, hasUnk bool
}

func readConfig(path string) (*tokenizerConfig, error) {
	c := &tokenizerConfig{path: path}
	b, err := safeio.ReadFile(path, safeio.JSONLimit)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var o obj
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	tok := func(k string) (*string, bool, error) {
		raw, ok := o[k]
		if !ok {
			return nil, false, nil
		}
		if string(raw) == "null" {
			return nil, true, nil
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return &s, true, nil
		}
		var t struct {
			Content *string `json:"content"`
		}
		if json.Unmarshal(raw, &t) == nil && t.Content != nil {
			return t.Content, true, nil
		}
		return nil, false, fmt.Errorf("%s: %s: expected a token string or {\"content\": ...}, got %s", path, k, short(raw))
	}
	if c.bos, c.hasBOS, err = tok("bos_token"); err != nil {
		return nil, err
	}
	if c.eos, c.hasEOS, err = tok("eos_token"); err != nil {
		return nil, err
	}
	if c.pad, c.hasPad, err = tok("pad_token"); err != nil {
		return nil, err
	}
	if c.unk, c.hasUnk, err = tok("unk_token"); err != nil {
		return nil, err
	}
	flag := func(k string) (*bool, error) {
		if !o.has(k) {
			return nil, nil
		}
		var v bool
		if json.Unmarshal(o[k], &v) != nil {
			return nil, fmt.Errorf("%s: %s: expected true or false, got %s", path, k, short(o[k]))
		}
		return &v, nil
	}
	if c.addBOS, err = flag("add_bos_token"); err != nil {
		return nil, err
	}
	if c.addEOS, err = flag("add_eos_token"); err != nil {
		return nil, err
	}
	return c, nil
}

// resolve sets a special id from the config's token name, when the config names one.
func (c *tokenizerConfig) resolve(dst *int, name *string, has bool, lookup func(string) (int, bool)) {
	if !has {
		return
	}
	*dst = -1
	if name != nil {
		if id, ok := lookup(*name); ok {
			*dst = id
		}
	}
}

func (c *tokenizerConfig) applyHF(t *HF) {
	c.resolve(&t.special.BOS, c.bos, c.hasBOS, t.TokenToID)
	c.resolve(&t.special.EOS, c.eos, c.hasEOS, t.TokenToID)
	c.resolve(&t.special.Pad, c.pad, c.hasPad, t.TokenToID)
	c.resolve(&t.special.Unk, c.unk, c.hasUnk, t.TokenToID)
	if c.addBOS == nil && c.addEOS == nil {
		return
	}
	// As transformers' LlamaTokenizerFast / GemmaTokenizerFast update_post_processor: explicit
	// add_bos_token / add_eos_token rebuild the single-sequence template.
	var before, after []int
	if t.post != nil {
		before, after = t.post.bosEOS()
	}
	addBOS, addEOS := len(before) > 0, len(after) > 0
	if c.addBOS != nil {
		addBOS = *c.addBOS
	}
	if c.addEOS != nil {
		addEOS = *c.addEOS
	}
	var p templatePost
	if addBOS && t.special.BOS >= 0 {
		p.before = []int{t.special.BOS}
	}
	if addEOS && t.special.EOS >= 0 {
		p.after = []int{t.special.EOS}
	}
	t.post = p
}

func (c *tokenizerConfig) applySP(s *SentencePiece) {
	c.resolve(&s.special.BOS, c.bos, c.hasBOS, s.TokenToID)
	c.resolve(&s.special.EOS, c.eos, c.hasEOS, s.TokenToID)
	c.resolve(&s.special.Pad, c.pad, c.hasPad, s.TokenToID)
	c.resolve(&s.special.Unk, c.unk, c.hasUnk, s.TokenToID)
	if c.addBOS != nil {
		s.addBOS = *c.addBOS
	}
	if c.addEOS != nil {
		s.addEOS = *c.addEOS
	}
}
