package text

import (
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkEncode encodes ~1 kB of English (repeated golden inputs) with each fixture.
func BenchmarkEncode(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 1000 {
		sb.WriteString("I read a book   yesterday. It was the BEST book, wasn't it? DON'T you THINK so? ")
	}
	txt := sb.String()
	for _, name := range []string{"gpt2.json", "llama3.json", "llama2.json", "bert.json", "t5.json", "sp_unigram.model", "sp_bpe_llama.model", "sp_bpe_gemma.model"} {
		tok, err := Load(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(txt)))
			for range b.N {
				tok.Encode(txt)
			}
		})
	}
}
