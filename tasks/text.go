package tasks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/text"
)

// textCodec encodes a task's natural-language text (instructions, captions): with reel's word
// vocabulary by default, or with the tokenizer at model.tokenizer (a tokenizer.json, SentencePiece
// .model, vocab.json + merges.txt, or a model directory; text.Load), whose ids are shifted by one
// so that id 0 stays the padding every model here masks out.
type textCodec struct {
	tok   text.Tokenizer
	shift int
	files map[string][]byte // the tokenizer's files, copied into checkpoints
	// newline ends every text with "\n" before encoding (LeRobot's NewLineTaskProcessorStep).
	newline bool
}

func newTextCodec(path string, words *text.Vocab) (*textCodec, error) {
	return newTextCodecReserving(path, words, 1)
}

// newTextCodecReserving is newTextCodec whose tokenizer ids are shifted past `reserved` ids
// (0 = padding, then the task's own markers, e.g. BOS and EOS).
func newTextCodecReserving(path string, words *text.Vocab, reserved int) (*textCodec, error) {
	if path == "" {
		return &textCodec{tok: text.Words{V: words}}, nil
	}
	tok, err := text.Load(path)
	if err != nil {
		return nil, fmt.Errorf("model.tokenizer: %w", err)
	}
	files, err := tokenizerFiles(path)
	if err != nil {
		return nil, fmt.Errorf("model.tokenizer: %w", err)
	}
	return &textCodec{tok: tok, shift: reserved, files: files}, nil
}

// size is the number of ids encode produces (embedding table rows), padding included.
func (c *textCodec) size() int { return c.tok.VocabSize() + c.shift }

// encode returns the ids of s (no special tokens).
func (c *textCodec) encode(s string) []int {
	if c.newline && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	ids := c.tok.Encode(s)
	if c.shift != 0 {
		for i := range ids {
			ids[i] += c.shift
		}
	}
	return ids
}

// hasTokenizer reports whether path is, or is a directory holding, a tokenizer text.Load reads.
func hasTokenizer(path string) bool {
	_, names, err := tokenizerNames(path)
	return err == nil && len(names) > 0
}

// tokenizerNames are the directory and base names of the files text.Load reads for path (the
// optional tokenizer_config.json aside).
func tokenizerNames(path string) (dir string, names []string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, err
	}
	dir = path
	if st.IsDir() {
		for _, n := range []string{"tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json"} {
			if _, err := os.Stat(filepath.Join(path, n)); err == nil {
				names = append(names, n)
				break
			}
		}
	} else {
		dir, names = filepath.Dir(path), []string{filepath.Base(path)}
	}
	if len(names) == 1 && strings.HasSuffix(names[0], "vocab.json") {
		names = append(names, "merges.txt")
	}
	if len(names) == 0 {
		return "", nil, fmt.Errorf("%s has no tokenizer file", path)
	}
	return dir, names, nil
}

// tokenizerFiles reads the files text.Load reads for path, by base name.
func tokenizerFiles(path string) (map[string][]byte, error) {
	dir, names, err := tokenizerNames(path)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, n := range append(names, "tokenizer_config.json") {
		b, err := safeio.ReadFile(filepath.Join(dir, n), safeio.TokenizerLimit)
		if err != nil {
			if n == "tokenizer_config.json" {
				continue // optional
			}
			return nil, err
		}
		if n == names[0] && filepath.Ext(n) == ".json" && !strings.HasSuffix(n, "vocab.json") {
			n = "tokenizer.json" // so that text.Load finds it in a checkpoint directory
		}
		out[n] = b
	}
	return out, nil
}
