package text

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// Bad tokenizer files give one line naming the file and the field.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ content, want string }{
		{`{"model": `, "not valid JSON"},
		{`[1, 2]`, "expected a tokenizer.json object"},
		{`{"normalizer": null}`, "model: missing"},
		{`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`, `model: merges[0]: token "b" is not in model.vocab`},
		{`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}`, `model.merges[0]: expected "a b"`},
		{`{"model": {"type": "BPE", "vocab": [1], "merges": []}}`, "model.vocab: expected an object"},
		{`{"model": {"type": "Bogus"}}`, `model.type: unsupported model "Bogus"`},
		{`{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`, `model.unk_token: "[UNK]" is not in model.vocab`},
		{`{"model": {"type": "Unigram", "vocab": [["a", "x"]]}}`, "model.vocab[0]: expected [piece, score]"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1]], "unk_id": 3}}`, "model.unk_id: 3 is outside"},
		{`{"model": {"type": "WordLevel", "vocab": {}}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"}}`, "pre_tokenizer.pattern.Regex: cannot compile"},
		{`{"model": {"type": "WordLevel", "vocab": {}}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}]}}`, "pre_tokenizer.pretokenizers[0].behavior: expected Removed"},
		{`{"model": {"type": "WordLevel", "vocab": {}}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AQ=="}}`, "normalizer: precompiled_charsmap: shorter than"},
		{`{"model": {"type": "WordLevel", "vocab": {}}, "decoder": {"type": "Strip", "content": "ab"}}`, "decoder.content: expected a single character"},
		{`{"model": {"type": "WordLevel", "vocab": {}}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}}}`, `post_processor.single[0]: special token "<s>" is not in post_processor.special_tokens`},
		{`{"model": {"type": "WordLevel", "vocab": {}}, "added_tokens": [{"id": "x"}]}`, "added_tokens: expected a list"},
	} {
		p := writeFile(t, dir, "tokenizer.json", c.content)
		_, err := Load(p)
		require.Error(t, err, c.content)
		msg := err.Error()
		require.NotContains(t, msg, "\n", c.content)
		require.True(t, strings.HasPrefix(msg, p+": "), "%q should name the file", msg)
		require.Contains(t, msg, c.want)
	}
	p := writeFile(t, dir, "bad.model", "\x0a\x05hello-not-proto")
	_, err := Load(p)
	require.ErrorContains(t, err, p+": ")
	_, err = Load(filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "no such file")
	empty := t.TempDir()
	_, err = Load(empty)
	require.ErrorContains(t, err, "has no tokenizer.json")
	writeFile(t, empty, "tokenizer.model", "x")
	writeFile(t, empty, "tokenizer_config.json", `{"add_bos_token": "yes"}`)
	_, err = Load(empty)
	require.ErrorContains(t, err, "tokenizer_config.json: add_bos_token: expected true or false")
}

// A model directory: tokenizer.json preferred over tokenizer.model, tokenizer_config.json's
// add_bos_token / add_eos_token rebuilding the template, its eos_token naming EOS.
func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "llama2.json"))
	require.NoError(t, err)
	writeFile(t, dir, "tokenizer.json", string(b))
	writeFile(t, dir, "tokenizer.model", "not read")
	tok, err := Load(dir)
	require.NoError(t, err)
	require.IsType(t, &HF{}, tok)
	hello := tok.Encode("Hello")
	require.Equal(t, append([]int{1}, hello...), tok.EncodeSpecial("Hello"))
	require.Equal(t, SpecialTokens{BOS: 1, EOS: -1, Pad: -1, Unk: 0}, tok.Special())

	writeFile(t, dir, "tokenizer_config.json", `{"add_bos_token": true, "add_eos_token": true, "bos_token": "<s>",
		"eos_token": {"content": "</s>", "lstrip": false}, "pad_token": null, "unk_token": "<unk>"}`)
	tok, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, SpecialTokens{BOS: 1, EOS: 2, Pad: -1, Unk: 0}, tok.Special())
	require.Equal(t, append(append([]int{1}, hello...), 2), tok.EncodeSpecial("Hello"))
	require.Equal(t, "Hello", tok.Decode(tok.Encode("Hello")))

	// A directory with only the SentencePiece model.
	sp := t.TempDir()
	mb, err := os.ReadFile(filepath.Join("testdata", "sp_bpe_llama.model"))
	require.NoError(t, err)
	writeFile(t, sp, "tokenizer.model", string(mb))
	tok, err = Load(sp)
	require.NoError(t, err)
	require.Equal(t, SpecialTokens{BOS: 1, EOS: 2, Pad: -1, Unk: 0}, tok.Special())
	require.Equal(t, append([]int{1}, tok.Encode("Hello")...), tok.EncodeSpecial("Hello"))
	require.Equal(t, tok.VocabSize(), len(tok.(*SentencePiece).m.pieces))
}

// Added tokens' flags: single_word, lstrip, rstrip and normalized, on a word-level vocabulary
// where every id is easy to read; the expected ids are those huggingface/tokenizers 0.23.2 gives.
func TestAddedTokenFlags(t *testing.T) {
	tok, err := parseTokenizerJSON([]byte(`{
		"added_tokens": [
			{"id": 4, "content": "<sw>", "single_word": true, "special": true},
			{"id": 5, "content": "<ls>", "lstrip": true, "special": true},
			{"id": 6, "content": "<rs>", "rstrip": true, "special": true},
			{"id": 99, "content": "hey", "normalized": true}
		],
		"normalizer": {"type": "Lowercase"},
		"pre_tokenizer": {"type": "WhitespaceSplit"},
		"model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1, "x<sw>y": 2, "[UNK]": 3}, "unk_token": "[UNK]"}
	}`))
	require.NoError(t, err)
	require.Equal(t, []int{0, 4, 1}, tok.Encode("a <sw> b"))
	require.Equal(t, []int{2}, tok.Encode("x<sw>y"), "single_word: not matched inside a word")
	require.Equal(t, []int{0, 5, 1}, tok.Encode("a   <ls>b"))
	require.Equal(t, []int{0, 6, 1}, tok.Encode("a<rs>   b"))
	require.Equal(t, []int{0, 7, 1}, tok.Encode("a HEY b"), "normalized: matched after lowercasing; the file's id 99 is ignored, as by the reference")
	require.Equal(t, 8, tok.VocabSize())
	require.Equal(t, "a <sw> b", tok.Decode([]int{0, 4, 1}))
	require.Equal(t, "a b", tok.DecodeSkipSpecial([]int{0, 4, 1}))
}

func TestPossessiveToAtomic(t *testing.T) {
	for in, want := range map[string]string{
		`a++b`:               `(?>a+)b`,
		`[^\s\p{L}]?+x`:      `(?>[^\s\p{L}]?)x`,
		`\p{L}++|\s*+$`:      `(?>\p{L}+)|(?>\s*)$`,
		`(ab)++`:             `(?>(ab)+)`,
		`\p{N}{1,3}+`:        `(?>\p{N}{1,3})`,
		`a+?b`:               `a+?b`,
		`[+]+`:               `[+]+`,
		`\++`:                `\++`,
		`x{2}`:               `x{2}`,
		`'(?i:[sdmt]|ll)|\s`: `'(?i:[sdmt]|ll)|\s`,
	} {
		require.Equal(t, want, possessiveToAtomic(in), in)
	}
}

func TestWords(t *testing.T) {
	v := NewVocab([]string{"how", "many", "red", "circles", "?", "blue"})
	w := Words{v}
	ids := w.Encode("How many red circles?")
	require.Equal(t, []int{v.ID("how"), v.ID("many"), v.ID("red"), v.ID("circles"), v.ID("?")}, ids)
	require.Equal(t, UNKID, w.Encode("zebra")[0])
	require.Equal(t, append(append([]int{BOSID}, ids...), EOSID), w.EncodeSpecial("How many red circles?"))
	require.Equal(t, "how many red circles ?", w.Decode(w.EncodeSpecial("How many red circles?")))
	require.Equal(t, v.Size(), w.VocabSize())
	require.Equal(t, SpecialTokens{BOS: BOSID, EOS: EOSID, Pad: PadID, Unk: UNKID}, w.Special())
}
