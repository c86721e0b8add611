package text

import (
	"strings"

	"github.com/reelml/reel/data"
)

// Words is reel's word vocabulary (data.Vocab with data.Tokenize's lowercasing and splitting)
// behind the Tokenizer interface.
type Words struct{ V *data.Vocab }

var _ Tokenizer = Words{}

// Encode maps each word of data.Tokenize(text) to its id, unknown words to data.UNKID.
func (w Words) Encode(text string) []int {
	words := data.Tokenize(text)
	ids := make([]int, len(words))
	for i, x := range words {
		ids[i] = w.V.ID(x)
	}
	return ids
}

// EncodeSpecial puts data.BOSID and data.EOSID around Encode's ids, as reel's scene tasks do.
func (w Words) EncodeSpecial(text string) []int {
	return append(append([]int{data.BOSID}, w.Encode(text)...), data.EOSID)
}

// Decode joins the words of the ids with spaces, leaving out padding, BOS and EOS.
func (w Words) Decode(ids []int) string {
	var words []string
	for _, id := range ids {
		if id == data.PadID || id == data.BOSID || id == data.EOSID {
			continue
		}
		words = append(words, w.V.Word(id))
	}
	return strings.Join(words, " ")
}

// VocabSize is the number of words, specials included.
func (w Words) VocabSize() int { return w.V.Size() }

// Special returns data's fixed special ids.
func (w Words) Special() SpecialTokens {
	return SpecialTokens{BOS: data.BOSID, EOS: data.EOSID, Pad: data.PadID, Unk: data.UNKID}
}
