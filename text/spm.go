package text

import (
	"bytes"
	"container/heap"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	esp "github.com/eliben/go-sentencepiece"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/reelml/reel/internal/safeio"
)

// Piece types of SentencePiece's ModelProto (google/sentencepiece src/sentencepiece_model.proto).
const (
	spNormal      = 1
	spUnknown     = 2
	spControl     = 3
	spUserDefined = 4
	spUnused      = 5
	spByte        = 6
)

// spModel is what the tokenizer needs of a SentencePiece ModelProto.
type spModel struct {
	pieces                                  []string
	scores                                  []float32
	types                                   []int
	modelType                               int // 1 unigram, 2 BPE
	byteFallback                            bool
	unkID, bosID, eosID, padID              int
	unkSurface                              string
	treatWSAsSuffix                         bool
	charsMap                                []byte
	addDummyPrefix, removeExtraWS, escapeWS bool
	normalizerName                          string
	hasTrainerSpec, hasNormalizerSpec       bool
}

func parseSPModel(b []byte) (*spModel, error) {
	m := &spModel{modelType: 1, unkID: 0, bosID: 1, eosID: 2, padID: -1, unkSurface: " \u2047 ",
		addDummyPrefix: true, removeExtraWS: true, escapeWS: true}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1: // pieces
			if typ != protowire.BytesType {
				return fmt.Errorf("pieces: wrong wire type")
			}
			piece, score, ptype := "", float32(0), spNormal
			err := eachField(v, func(n protowire.Number, t protowire.Type, pv []byte, px uint64) error {
				switch n {
				case 1:
					piece = string(pv)
				case 2:
					score = math.Float32frombits(uint32(px))
				case 3:
					ptype = int(px)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("pieces[%d]: %w", len(m.pieces), err)
			}
			if piece == "" {
				return fmt.Errorf("pieces[%d]: empty piece", len(m.pieces))
			}
			if ptype < spNormal || ptype > spByte {
				return fmt.Errorf("pieces[%d] (%q): unknown type %d", len(m.pieces), piece, ptype)
			}
			m.pieces = append(m.pieces, piece)
			m.scores = append(m.scores, score)
			m.types = append(m.types, ptype)
		case 2: // trainer_spec
			m.hasTrainerSpec = true
			return eachField(v, func(n protowire.Number, t protowire.Type, pv []byte, px uint64) error {
				switch n {
				case 3:
					m.modelType = int(px)
				case 24:
					m.treatWSAsSuffix = px != 0
				case 35:
					m.byteFallback = px != 0
				case 40:
					m.unkID = int(int32(px))
				case 41:
					m.bosID = int(int32(px))
				case 42:
					m.eosID = int(int32(px))
				case 43:
					m.padID = int(int32(px))
				case 44:
					m.unkSurface = string(pv)
				}
				return nil
			})
		case 3: // normalizer_spec
			m.hasNormalizerSpec = true
			return eachField(v, func(n protowire.Number, t protowire.Type, pv []byte, px uint64) error {
				switch n {
				case 1:
					m.normalizerName = string(pv)
				case 2:
					m.charsMap = append([]byte(nil), pv...)
				case 3:
					m.addDummyPrefix = px != 0
				case 4:
					m.removeExtraWS = px != 0
				case 5:
					m.escapeWS = px != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(m.pieces) == 0 {
		return nil, fmt.Errorf("no pieces: not a SentencePiece model")
	}
	return m, nil
}

// eachField walks the fields of a protobuf message: v is the payload of length-delimited fields,
// x the value of varint and fixed ones.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("not a protobuf message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("not a protobuf message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// SentencePiece is a tokenizer read from a SentencePiece .model file, with SentencePiece's own
// semantics (google/sentencepiece src/normalizer.cc, unigram_model.cc, bpe_model.cc,
// sentencepiece_processor.cc): the normalizer spec (precompiled character map, dummy prefix,
// extra white space removal, ▁ escaping), user-defined symbols kept whole, Unigram Viterbi or BPE
// merges by score, and byte fallback for unknown characters. BPE models with a plain normalizer
// (Gemma's) are encoded by github.com/eliben/go-sentencepiece.
type SentencePiece struct {
	m       *spModel
	ids     map[string]int // normal, user-defined and unused pieces
	reserve map[string]int // control, unknown and byte pieces
	trie    *byteTrie      // normal, user-defined and unused pieces
	user    *byteTrie      // user-defined pieces
	chars   *charsMap
	byteIDs [256]int
	minS    float32
	maxS    float32
	lib     *esp.Processor
	special SpecialTokens
	addBOS  bool
	addEOS  bool
}

var _ Tokenizer = (*SentencePiece)(nil)

// LoadSentencePiece reads a SentencePiece .model file.
func LoadSentencePiece(path string) (*SentencePiece, error) {
	b, err := safeio.ReadFile(path, safeio.TokenizerLimit)
	if err != nil {
		return nil, err
	}
	s, err := newSentencePiece(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func newSentencePiece(b []byte) (*SentencePiece, error) {
	m, err := parseSPModel(b)
	if err != nil {
		return nil, err
	}
	if m.modelType != 1 && m.modelType != 2 {
		return nil, fmt.Errorf("trainer_spec.model_type: %d is not supported (expected 1 UNIGRAM or 2 BPE)", m.modelType)
	}
	s := &SentencePiece{m: m, ids: map[string]int{}, reserve: map[string]int{}, trie: newByteTrie(), user: newByteTrie(),
		minS: math.MaxFloat32, maxS: math.SmallestNonzeroFloat32}
	for i := range s.byteIDs {
		s.byteIDs[i] = -1
	}
	unk := -1
	for i, p := range m.pieces {
		t := m.types[i]
		normal := t == spNormal || t == spUserDefined || t == spUnused
		dst := s.reserve
		if normal {
			dst = s.ids
		}
		if _, dup := dst[p]; dup {
			return nil, fmt.Errorf("pieces[%d]: %q is already defined", i, p)
		}
		dst[p] = i
		if normal {
			s.trie.insert(p, i)
		}
		switch t {
		case spUserDefined:
			s.user.insert(p, i)
		case spUnknown:
			if unk >= 0 {
				return nil, fmt.Errorf("pieces[%d]: a second unknown piece %q", i, p)
			}
			unk = i
		case spByte:
			if !m.byteFallback {
				return nil, fmt.Errorf("pieces[%d]: byte piece %q but trainer_spec.byte_fallback is false", i, p)
			}
			if len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>' {
				var v int
				if _, err := fmt.Sscanf(p[3:5], "%02X", &v); err == nil {
					s.byteIDs[v] = i
				}
			}
		case spNormal:
			s.minS = min(s.minS, m.scores[i])
			s.maxS = max(s.maxS, m.scores[i])
		}
	}
	if unk < 0 {
		return nil, fmt.Errorf("pieces: no piece of type UNKNOWN")
	}
	m.unkID = unk
	if m.byteFallback {
		for v, id := range s.byteIDs {
			if id < 0 {
				return nil, fmt.Errorf("pieces: byte_fallback is set but <0x%02X> is missing", v)
			}
		}
	}
	if s.chars, err = parseCharsMap(m.charsMap); err != nil {
		return nil, fmt.Errorf("normalizer_spec.%w", err)
	}
	id := func(i int) int {
		if i >= 0 && i < len(m.pieces) {
			return i
		}
		return -1
	}
	s.special = SpecialTokens{BOS: id(m.bosID), EOS: id(m.eosID), Pad: id(m.padID), Unk: unk}
	s.addBOS = s.special.BOS >= 0
	s.addEOS = s.special.BOS < 0 && s.special.EOS >= 0 // T5-style models end sequences with </s>
	if m.modelType == 2 && !m.addDummyPrefix && !m.removeExtraWS && m.escapeWS && !m.treatWSAsSuffix && s.chars == nil {
		if p, err := esp.NewProcessor(bytes.NewReader(b)); err == nil {
			s.lib = p
		}
	}
	return s, nil
}

// Encode is SentencePiece's EncodeAsIds (no BOS/EOS).
func (s *SentencePiece) Encode(text string) []int {
	if text == "" {
		return []int{}
	}
	if s.lib != nil {
		toks := s.lib.Encode(text)
		out := make([]int, len(toks))
		for i, t := range toks {
			out[i] = t.ID
		}
		return out
	}
	return s.encode(text)
}

// EncodeSpecial adds BOS (and EOS) as the model's tokenizer does: add_bos_token / add_eos_token
// of tokenizer_config.json when given, else BOS when the model has one, EOS when it has no BOS.
func (s *SentencePiece) EncodeSpecial(text string) []int {
	ids := s.Encode(text)
	if s.addBOS && s.special.BOS >= 0 {
		ids = append([]int{s.special.BOS}, ids...)
	}
	if s.addEOS && s.special.EOS >= 0 {
		ids = append(ids, s.special.EOS)
	}
	return ids
}

func (s *SentencePiece) encode(text string) []int {
	normalized := s.normalize(text)
	if normalized == "" {
		return []int{}
	}
	type result struct {
		piece string
		id    int
	}
	var res []result
	if s.m.modelType == 1 {
		for _, r := range s.unigramEncode(normalized) {
			res = append(res, result{normalized[r[0]:r[1]], r[2]})
		}
	} else {
		for _, p := range s.bpeEncode(normalized) {
			res = append(res, result{p, s.pieceToID(p)})
		}
	}
	out := make([]int, 0, len(res))
	prevUnk := false
	for _, r := range res {
		isUnk := r.id == s.m.unkID
		switch {
		case isUnk && s.m.byteFallback:
			for i := 0; i < len(r.piece); i++ {
				out = append(out, s.byteIDs[r.piece[i]])
			}
		case isUnk && prevUnk: // runs of unknown pieces merge into one
		default:
			out = append(out, r.id)
		}
		prevUnk = isUnk
	}
	return out
}

func (s *SentencePiece) pieceToID(p string) int {
	if id, ok := s.reserve[p]; ok {
		return id
	}
	if id, ok := s.ids[p]; ok {
		return id
	}
	return s.m.unkID
}

// normalizePrefix is Normalizer::NormalizePrefix: a user-defined symbol verbatim, else the
// longest rule of the character map, else one character (one byte of malformed UTF-8 as U+FFFD).
func (s *SentencePiece) normalizePrefix(in string) (string, int) {
	if n, _ := s.user.longest(in); n > 0 {
		return in[:n], n
	}
	if s.chars != nil {
		if n, out := s.chars.longest(in); n > 0 {
			return out, n
		}
	}
	r, n := utf8.DecodeRuneInString(in)
	if r == utf8.RuneError && n <= 1 {
		return "\uFFFD", 1
	}
	return in[:n], n
}

// normalize is Normalizer::Normalize.
func (s *SentencePiece) normalize(in string) string {
	const space = "\u2581"
	m := s.m
	if m.removeExtraWS {
		for in != "" {
			p, n := s.normalizePrefix(in)
			if p != " " {
				break
			}
			in = in[n:]
		}
	}
	if in == "" {
		return ""
	}
	var sb strings.Builder
	ws := " "
	if m.escapeWS {
		ws = space
	}
	if !m.treatWSAsSuffix && m.addDummyPrefix {
		sb.WriteString(ws)
	}
	prevSpace := m.removeExtraWS
	for in != "" {
		p, n := s.normalizePrefix(in)
		for prevSpace && strings.HasPrefix(p, " ") {
			p = p[1:]
		}
		if p != "" {
			if m.escapeWS {
				sb.WriteString(strings.ReplaceAll(p, " ", space))
			} else {
				sb.WriteString(p)
			}
			prevSpace = strings.HasSuffix(p, " ")
		}
		in = in[n:]
		if !m.removeExtraWS {
			prevSpace = false
		}
	}
	out := sb.String()
	if m.removeExtraWS {
		for strings.HasSuffix(out, ws) {
			out = out[:len(out)-len(ws)]
		}
	}
	if m.treatWSAsSuffix && m.addDummyPrefix {
		out += ws
	}
	return out
}

// unigramEncode is unigram::Model::EncodeOptimized; it returns [start, end, id] triples.
func (s *SentencePiece) unigramEncode(text string) [][3]int {
	type node struct {
		id    int
		score float32
		start int
	}
	n := len(text)
	best := make([]node, n+1)
	for i := range best {
		best[i] = node{-1, 0, -1}
	}
	unkScore := s.minS - unkPenalty
	for start := 0; start < n; {
		_, mblen := utf8.DecodeRuneInString(text[start:])
		here := best[start].score
		single := false
		s.trie.prefixes(text[start:], func(l, id int) {
			if s.m.types[id] == spUnused {
				return
			}
			t := &best[start+l]
			score := s.m.scores[id]
			if s.m.types[id] == spUserDefined {
				score = float32(l)*s.maxS - 0.1
			}
			cand := score + here
			if t.start < 0 || cand > t.score {
				*t = node{id, cand, start}
			}
			if l == mblen {
				single = true
			}
		})
		if !single {
			t := &best[start+mblen]
			cand := unkScore + here
			if t.start < 0 || cand > t.score {
				*t = node{s.m.unkID, cand, start}
			}
		}
		start += mblen
	}
	var out [][3]int
	for end := n; end > 0; {
		nd := best[end]
		out = append(out, [3]int{nd.start, end, nd.id})
		end = nd.start
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

type spPair struct {
	left, right int
	score       float32
	size        int
}

type spAgenda []spPair

func (a spAgenda) Len() int { return len(a) }
func (a spAgenda) Less(i, j int) bool {
	if a[i].score != a[j].score {
		return a[i].score > a[j].score
	}
	return a[i].left < a[j].left
}
func (a spAgenda) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a *spAgenda) Push(x any)   { *a = append(*a, x.(spPair)) }
func (a *spAgenda) Pop() any {
	o := *a
	x := o[len(o)-1]
	*a = o[:len(o)-1]
	return x
}

// bpeEncode is bpe::Model::SampleEncode without sampling: merges the best-scored adjacent pair
// first, user-defined symbols never merge, and unused pieces are split back into their parts.
func (s *SentencePiece) bpeEncode(text string) []string {
	type sym struct {
		prev, next int
		freeze     bool
		start, end int
	}
	var syms []sym
	for i := 0; i < len(text); {
		n, _ := s.user.longest(text[i:])
		freeze := n > 0
		if !freeze {
			_, n = utf8.DecodeRuneInString(text[i:])
		}
		syms = append(syms, sym{prev: len(syms) - 1, next: len(syms) + 1, freeze: freeze, start: i, end: i + n})
		i += n
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1
	revMerge := map[string][2]string{}
	var agenda spAgenda
	add := func(l, r int) {
		if l < 0 || r < 0 || syms[l].freeze || syms[r].freeze {
			return
		}
		piece := text[syms[l].start:syms[r].end]
		id, ok := s.ids[piece]
		if !ok {
			return
		}
		heap.Push(&agenda, spPair{l, r, s.m.scores[id], len(piece)})
		if s.m.types[id] == spUnused {
			revMerge[piece] = [2]string{text[syms[l].start:syms[l].end], text[syms[r].start:syms[r].end]}
		}
	}
	for i := 1; i < len(syms); i++ {
		add(i-1, i)
	}
	for agenda.Len() > 0 {
		top := heap.Pop(&agenda).(spPair)
		l, r := &syms[top.left], &syms[top.right]
		if l.end == l.start || r.end == r.start || (l.end-l.start)+(r.end-r.start) != top.size {
			continue
		}
		l.end = r.end
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = top.left
		}
		r.start, r.end = 0, 0
		add(syms[top.left].prev, top.left)
		add(top.left, syms[top.left].next)
	}
	var out []string
	var reseg func(w string)
	reseg = func(w string) {
		id, ok := s.ids[w]
		if !ok || s.m.types[id] != spUnused {
			out = append(out, w)
			return
		}
		p, ok := revMerge[w]
		if !ok {
			out = append(out, w)
			return
		}
		reseg(p[0])
		reseg(p[1])
	}
	for i := 0; i >= 0; i = syms[i].next {
		reseg(text[syms[i].start:syms[i].end])
	}
	return out
}

// Decode is SentencePiece's DecodeIds: control pieces vanish, the unknown piece reads as the
// model's unk_surface, byte pieces are reassembled (malformed UTF-8 becomes U+FFFD per byte), ▁
// becomes a space and the dummy prefix's space is dropped. Out-of-range ids are skipped.
func (s *SentencePiece) Decode(ids []int) string {
	valid := make([]int, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < len(s.m.pieces) {
			valid = append(valid, id)
		}
	}
	if s.lib != nil {
		return s.lib.Decode(valid)
	}
	var text strings.Builder
	var pending []byte
	flush := func() {
		for len(pending) > 0 {
			r, n := utf8.DecodeRune(pending)
			if r == utf8.RuneError && n <= 1 {
				text.WriteString("\uFFFD")
				n = 1
			} else {
				text.Write(pending[:n])
			}
			pending = pending[n:]
		}
	}
	isBosWS, bosWSSeen := true, false
	for _, id := range valid {
		t := s.m.types[id]
		if t == spByte {
			var v int
			fmt.Sscanf(s.m.pieces[id][3:5], "%02X", &v)
			pending = append(pending, byte(v))
			continue
		}
		flush()
		if bosWSSeen || text.Len() > 0 {
			isBosWS = false
		}
		piece := s.m.pieces[id]
		var decoded string
		bosWSSeen = false
		switch t {
		case spControl:
		case spUnknown:
			decoded = s.m.unkSurface
		default:
			if isBosWS && (s.m.addDummyPrefix || s.m.removeExtraWS) {
				var cut bool
				piece, cut = strings.CutPrefix(piece, "\u2581")
				bosWSSeen = cut && !s.m.removeExtraWS
			}
			decoded = strings.ReplaceAll(piece, "\u2581", " ")
		}
		text.WriteString(decoded)
	}
	flush()
	return text.String()
}

// VocabSize is the number of pieces.
func (s *SentencePiece) VocabSize() int { return len(s.m.pieces) }

// Special returns the ids of the BOS, EOS, padding and unknown pieces.
func (s *SentencePiece) Special() SpecialTokens { return s.special }

// TokenToID returns the id of a piece.
func (s *SentencePiece) TokenToID(piece string) (int, bool) {
	if id, ok := s.reserve[piece]; ok {
		return id, true
	}
	id, ok := s.ids[piece]
	return id, ok
}

// IDToToken returns the piece of an id.
func (s *SentencePiece) IDToToken(id int) (string, bool) {
	if id < 0 || id >= len(s.m.pieces) {
		return "", false
	}
	return s.m.pieces[id], true
}
