package text

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The golden files hold ids computed by the reference implementations (see testdata/README.md):
// huggingface/tokenizers for the tokenizer.json fixtures, google/sentencepiece for the .model ones.
type goldenCase struct {
	Text        string `json:"text"`
	IDs         []int  `json:"ids"`
	IDsSpecial  []int  `json:"ids_special"`
	Decoded     string `json:"decoded"`
	DecodedSkip string `json:"decoded_skip"`
}

func readGolden(t *testing.T, name string) []goldenCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
	require.NoError(t, err)
	var g struct {
		Cases []goldenCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Cases)
	return g.Cases
}

var hfFixtures = []struct {
	name      string
	roundTrip bool // decode(encode(text)) == text for every case
}{
	{"gpt2", true}, {"llama3", true}, {"qwen2", false}, {"o200k", true}, {"cl100k", true}, {"deepseek3", true},
	{"llama2", false}, {"gemma", true}, {"bert", false}, {"t5", false}, {"albert", false},
}

func TestGoldenTokenizerJSON(t *testing.T) {
	for _, f := range hfFixtures {
		t.Run(f.name, func(t *testing.T) {
			tok, err := LoadTokenizerJSON(filepath.Join("testdata", f.name+".json"))
			require.NoError(t, err)
			for _, c := range readGolden(t, f.name) {
				require.Equal(t, c.IDs, tok.Encode(c.Text), "encode %q", c.Text)
				require.Equal(t, c.IDsSpecial, tok.EncodeSpecial(c.Text), "encode with special tokens %q", c.Text)
				require.Equal(t, c.Decoded, tok.Decode(c.IDs), "decode of %q", c.Text)
				require.Equal(t, c.DecodedSkip, tok.DecodeSkipSpecial(c.IDsSpecial), "decode skipping special tokens of %q", c.Text)
				if f.roundTrip {
					require.Equal(t, c.Text, tok.Decode(tok.Encode(c.Text)), "round trip")
				}
			}
		})
	}
}

func TestGoldenSentencePiece(t *testing.T) {
	for _, name := range []string{"sp_unigram", "sp_bpe_llama", "sp_bpe_gemma"} {
		t.Run(name, func(t *testing.T) {
			sp, err := LoadSentencePiece(filepath.Join("testdata", name+".model"))
			require.NoError(t, err)
			impls := map[string]*SentencePiece{"own": sp}
			if sp.lib != nil {
				// Gemma-style models go through go-sentencepiece; reel's own encoder must agree.
				own := *sp
				own.lib = nil
				impls["own"], impls["go-sentencepiece"] = &own, sp
			}
			require.Equal(t, name == "sp_bpe_gemma", sp.lib != nil, "go-sentencepiece handles exactly the plain-normalizer BPE model")
			for impl, s := range impls {
				for _, c := range readGolden(t, name) {
					require.Equal(t, c.IDs, s.Encode(c.Text), "%s: encode %q", impl, c.Text)
					require.Equal(t, c.Decoded, s.Decode(c.IDs), "%s: decode of %q", impl, c.Text)
				}
			}
		})
	}
}

// The GPT-2 fixture's vocabulary written as vocab.json + merges.txt must tokenize as the
// tokenizer.json does.
func TestVocabMergesMatchesTokenizerJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "gpt2.json"))
	require.NoError(t, err)
	var j struct {
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges [][2]string    `json:"merges"`
		} `json:"model"`
	}
	require.NoError(t, json.Unmarshal(b, &j))
	dir := t.TempDir()
	j.Model.Vocab["<|endoftext|>"] = len(j.Model.Vocab)
	vb, _ := json.Marshal(j.Model.Vocab)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vocab.json"), vb, 0o644))
	merges := "#version: 0.2\n"
	for _, m := range j.Model.Merges {
		merges += m[0] + " " + m[1] + "\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "merges.txt"), []byte(merges), 0o644))
	tok, err := Load(dir)
	require.NoError(t, err)
	for _, c := range readGolden(t, "gpt2") {
		require.Equal(t, c.IDs, tok.Encode(c.Text), "encode %q", c.Text)
		require.Equal(t, c.Text, tok.Decode(c.IDs))
	}
	require.Equal(t, len(j.Model.Vocab)-1, tok.Special().EOS)
}
