package text

import (
	"strings"
)

// Words is reel's word vocabulary (Vocab with Tokenize's lowercasing and splitting)
// behind the Tokenizer interface.
type Words struct{ V *Vocab }

var _ Tokenizer = Words{}

// Encode maps each word of Tokenize(text) to its id, unknown words to UNKID.
func (w Words) Encode(text string) []int {
	words := Tokenize(text)
	ids := make([]int, len(words))
	for i, x := range words {
		ids[i] = w.V.ID(x)
	}
	return ids
}

// EncodeSpecial puts BOSID and EOSID around Encode's ids, as reel's scene tasks do.
func (w Words) EncodeSpecial(text string) []int {
	return append(append([]int{BOSID}, w.Encode(text)...), EOSID)
}

// Decode joins the words of the ids with spaces, leaving out padding, BOS and EOS.
func (w Words) Decode(ids []int) string {
	var words []string
	for _, id := range ids {
		if id == PadID || id == BOSID || id == EOSID {
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
	return SpecialTokens{BOS: BOSID, EOS: EOSID, Pad: PadID, Unk: UNKID}
}
