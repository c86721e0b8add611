package text

import (
	"container/heap"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"
)

// model turns one pre-tokenized piece into ids.
type model interface {
	tokenize(s string) []int
	tokenToID(s string) (int, bool)
	idToToken(id int) (string, bool)
	// size is one past the largest id of the model's vocabulary.
	size() int
}

// vocab is a token ↔ id map shared by the models.
type vocab struct {
	ids    map[string]int
	tokens map[int]string
	max    int
}

func newVocab(m map[string]int) vocab {
	v := vocab{ids: m, tokens: make(map[int]string, len(m)), max: -1}
	for t, id := range m {
		v.tokens[id] = t
		v.max = max(v.max, id)
	}
	return v
}

func (v vocab) tokenToID(s string) (int, bool)  { id, ok := v.ids[s]; return id, ok }
func (v vocab) idToToken(id int) (string, bool) { t, ok := v.tokens[id]; return t, ok }
func (v vocab) size() int                       { return v.max + 1 }

// bpe is the BPE model (huggingface/tokenizers tokenizers/src/models/bpe/model.rs and word.rs).
type bpe struct {
	vocab
	merges        map[[2]int][2]int // pair -> (rank, new id)
	unk           string
	hasUnk        bool
	prefix        string // continuing_subword_prefix
	suffix        string // end_of_word_suffix
	fuseUnk       bool
	byteFallback  bool
	ignoreMerges  bool
	byteTokens    [256]int // id of "<0xXX>", -1 if absent
	cache         sync.Map
	cacheCount    int
	cacheCountMux sync.Mutex
}

const bpeCacheCap = 10000

func newBPE(v map[string]int, merges [][2]string) (*bpe, error) {
	b := &bpe{vocab: newVocab(v), merges: make(map[[2]int][2]int, len(merges))}
	for i := range b.byteTokens {
		b.byteTokens[i] = -1
		if id, ok := v[fmt.Sprintf("<0x%02X>", i)]; ok {
			b.byteTokens[i] = id
		}
	}
	return b, nil
}

// setMerges builds the merge map once the continuing_subword_prefix is known.
func (b *bpe) setMerges(merges [][2]string) error {
	for i, m := range merges {
		a, ok := b.ids[m[0]]
		if !ok {
			return fmt.Errorf("model.merges[%d]: token %q is not in model.vocab", i, m[0])
		}
		c, ok := b.ids[m[1]]
		if !ok {
			return fmt.Errorf("model.merges[%d]: token %q is not in model.vocab", i, m[1])
		}
		right := m[1]
		if b.prefix != "" {
			right = strings.TrimPrefix(right, b.prefix)
		}
		nid, ok := b.ids[m[0]+right]
		if !ok {
			return fmt.Errorf("model.merges[%d]: merged token %q is not in model.vocab", i, m[0]+right)
		}
		b.merges[[2]int{a, c}] = [2]int{i, nid}
	}
	return nil
}

type symbol struct {
	c          int
	prev, next int
	len        int
}

type mergeItem struct{ pos, rank, newID int }

type mergeHeap []mergeItem

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (b *bpe) tokenize(s string) []int {
	if s == "" {
		return nil
	}
	if b.ignoreMerges {
		if id, ok := b.ids[s]; ok {
			return []int{id}
		}
	}
	if c, ok := b.cache.Load(s); ok {
		return append([]int(nil), c.([]int)...)
	}
	ids := b.mergeWord(s)
	b.cacheCountMux.Lock()
	if b.cacheCount < bpeCacheCap && len(s) < 256 {
		b.cacheCount++
		b.cache.Store(s, append([]int(nil), ids...))
	}
	b.cacheCountMux.Unlock()
	return ids
}

func (b *bpe) mergeWord(w string) []int {
	var syms []symbol
	add := func(id, n int) {
		l := len(syms)
		syms = append(syms, symbol{c: id, prev: l - 1, next: -1, len: n})
		if l > 0 {
			syms[l-1].next = l
		}
	}
	unkID, unkLen, pending := 0, 0, false
	for i := 0; i < len(w); {
		_, sz := utf8.DecodeRuneInString(w[i:])
		s := w[i : i+sz]
		first, last := i == 0, i+sz == len(w)
		if !first && b.prefix != "" {
			s = b.prefix + s
		}
		if last && b.suffix != "" {
			s += b.suffix
		}
		if id, ok := b.ids[s]; ok {
			if pending {
				add(unkID, unkLen)
				pending = false
			}
			add(id, sz)
		} else {
			done := false
			if b.byteFallback {
				all := true
				for j := 0; j < len(s); j++ {
					if b.byteTokens[s[j]] < 0 {
						all = false
						break
					}
				}
				if all {
					for j := 0; j < len(s); j++ {
						add(b.byteTokens[s[j]], 1)
					}
					done = true
				}
			}
			if !done && b.hasUnk {
				uid, ok := b.ids[b.unk]
				if ok {
					switch {
					case pending && b.fuseUnk:
						unkLen += sz
					case pending:
						add(unkID, unkLen)
						unkID, unkLen = uid, sz
					default:
						unkID, unkLen, pending = uid, sz, true
					}
				}
			}
		}
		i += sz
	}
	if pending {
		add(unkID, unkLen)
	}
	b.mergeAll(syms)
	var out []int
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		out = append(out, syms[i].c)
	}
	return out
}

func (b *bpe) mergeAll(syms []symbol) {
	h := make(mergeHeap, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[[2]int{syms[i].c, syms[i+1].c}]; ok {
			h = append(h, mergeItem{i, m[0], m[1]})
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		top := heap.Pop(&h).(mergeItem)
		if syms[top.pos].len == 0 || syms[top.pos].next == -1 {
			continue
		}
		nextPos := syms[top.pos].next
		right := syms[nextPos]
		if m, ok := b.merges[[2]int{syms[top.pos].c, right.c}]; !ok || m[1] != top.newID {
			continue
		}
		syms[top.pos].c = top.newID
		syms[top.pos].len += right.len
		syms[top.pos].next = right.next
		syms[nextPos].len = 0
		if right.next > -1 && right.next < len(syms) {
			syms[right.next].prev = top.pos
		}
		cur := syms[top.pos]
		if cur.prev >= 0 {
			if m, ok := b.merges[[2]int{syms[cur.prev].c, cur.c}]; ok {
				heap.Push(&h, mergeItem{cur.prev, m[0], m[1]})
			}
		}
		if cur.next >= 0 && cur.next < len(syms) {
			if m, ok := b.merges[[2]int{cur.c, syms[cur.next].c}]; ok {
				heap.Push(&h, mergeItem{top.pos, m[0], m[1]})
			}
		}
	}
}

// wordPiece is the WordPiece model (huggingface/tokenizers tokenizers/src/models/wordpiece/mod.rs):
// greedy longest-match-first, the whole word becoming the unknown token when a part is missing.
type wordPiece struct {
	vocab
	unkID    int
	prefix   string
	maxChars int
}

func (w *wordPiece) tokenize(s string) []int {
	if utf8.RuneCountInString(s) > w.maxChars {
		return []int{w.unkID}
	}
	var out []int
	for start := 0; start < len(s); {
		end := len(s)
		found := -1
		for start < end {
			sub := s[start:end]
			if start > 0 {
				sub = w.prefix + sub
			}
			if id, ok := w.ids[sub]; ok {
				found = id
				break
			}
			_, sz := utf8.DecodeLastRuneInString(s[start:end])
			end -= sz
		}
		if found < 0 {
			return []int{w.unkID}
		}
		out = append(out, found)
		start = end
	}
	return out
}

// wordLevel maps each piece to its id, or to the unknown token.
type wordLevel struct {
	vocab
	unkID int
}

func (w *wordLevel) tokenize(s string) []int {
	if id, ok := w.ids[s]; ok {
		return []int{id}
	}
	if w.unkID >= 0 {
		return []int{w.unkID}
	}
	return nil
}

// unigram is the Unigram model with the optimized Viterbi search of Hugging Face tokenizers
// (huggingface/tokenizers tokenizers/src/models/unigram/model.rs, itself from
// google/sentencepiece src/unigram_model.cc): unknown characters fuse into one unknown token,
// which byte_fallback spells out as <0xXX> tokens.
type unigram struct {
	pieces       []string
	scores       []float64
	ids          map[string]int
	trie         *byteTrie
	unkID        int // -1 if none
	minScore     float64
	byteFallback bool
}

const unkPenalty = 10.0

func newUnigram(pieces []string, scores []float64, unkID int, byteFallback bool) *unigram {
	u := &unigram{pieces: pieces, scores: scores, ids: make(map[string]int, len(pieces)), trie: newByteTrie(),
		unkID: unkID, minScore: math.Inf(1), byteFallback: byteFallback}
	for i, p := range pieces {
		u.ids[p] = i
		u.trie.insert(p, i)
		u.minScore = min(u.minScore, scores[i])
	}
	// Duplicated pieces resolve to the last id, as in the reference's token_to_ids map.
	for p, id := range u.ids {
		u.trie.insert(p, id)
	}
	return u
}

func (u *unigram) tokenToID(s string) (int, bool) { id, ok := u.ids[s]; return id, ok }
func (u *unigram) idToToken(id int) (string, bool) {
	if id < 0 || id >= len(u.pieces) {
		return "", false
	}
	return u.pieces[id], true
}
func (u *unigram) size() int { return len(u.pieces) }

func (u *unigram) tokenize(s string) []int {
	if s == "" {
		return nil
	}
	type node struct {
		id    int
		score float64
		start int // -1: unset
	}
	n := len(s)
	best := make([]node, n+1)
	for i := range best {
		best[i].start = -1
	}
	unkScore := u.minScore - unkPenalty
	for start := 0; start < n; {
		_, mblen := utf8.DecodeRuneInString(s[start:])
		here := best[start].score
		single := false
		u.trie.prefixes(s[start:], func(l, id int) {
			t := &best[start+l]
			cand := u.scores[id] + here
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
				*t = node{u.unkID, cand, start}
			}
		}
		start += mblen
	}
	// Backtrack, fusing runs of unknown characters.
	type tok struct {
		s     string
		isUnk bool
	}
	var toks []tok
	for end := n; end > 0; {
		nd := best[end]
		if nd.start < 0 {
			break
		}
		piece := s[nd.start:end]
		if nd.id == u.unkID && len(toks) > 0 && toks[len(toks)-1].isUnk {
			toks[len(toks)-1].s = piece + toks[len(toks)-1].s
		} else {
			toks = append(toks, tok{piece, nd.id == u.unkID})
		}
		end = nd.start
	}
	var out []int
	for i := len(toks) - 1; i >= 0; i-- {
		t := toks[i]
		if id, ok := u.ids[t.s]; ok {
			out = append(out, id)
			continue
		}
		if u.byteFallback {
			var bs []int
			for j := 0; j < len(t.s); j++ {
				id, ok := u.ids[fmt.Sprintf("<0x%02X>", t.s[j])]
				if !ok {
					bs = nil
					break
				}
				bs = append(bs, id)
			}
			if bs != nil {
				out = append(out, bs...)
				continue
			}
		}
		if u.unkID >= 0 {
			out = append(out, u.unkID)
		}
	}
	return out
}

// byteTrie is a byte-wise trie of tokens with their ids.
type byteTrie struct {
	next map[byte]*byteTrie
	id   int // -1 when no token ends here
}

func newByteTrie() *byteTrie { return &byteTrie{id: -1} }

func (t *byteTrie) insert(s string, id int) {
	for i := 0; i < len(s); i++ {
		if t.next == nil {
			t.next = map[byte]*byteTrie{}
		}
		n := t.next[s[i]]
		if n == nil {
			n = newByteTrie()
			t.next[s[i]] = n
		}
		t = n
	}
	t.id = id
}

// prefixes calls f(length, id) for every token that prefixes s, shortest first.
func (t *byteTrie) prefixes(s string, f func(n, id int)) {
	for i := 0; i < len(s); i++ {
		t = t.next[s[i]]
		if t == nil {
			return
		}
		if t.id >= 0 {
			f(i+1, t.id)
		}
	}
}

// longest returns the length and id of the longest token prefixing s (0, -1 if none).
func (t *byteTrie) longest(s string) (int, int) {
	n, id := 0, -1
	t.prefixes(s, func(l, i int) { n, id = l, i })
	return n, id
}
