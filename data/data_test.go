package data

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelml/reel/text"
	"github.com/stretchr/testify/require"
)

func newGen(t testing.TB, mod func(*SceneConfig)) *SceneGenerator {
	t.Helper()
	cfg := DefaultSceneConfig()
	if mod != nil {
		mod(&cfg)
	}
	g, err := NewSceneGenerator(cfg)
	require.NoError(t, err)
	return g
}

func TestVocab(t *testing.T) {
	v := text.NewVocab([]string{"a", "b", "a", "<pad>", "c"})
	require.Equal(t, 8, v.Size())
	require.Equal(t, []string{"<pad>", "<bos>", "<sep>", "<eos>", "<unk>", "a", "b", "c"}, v.Words())
	require.Equal(t, 5, v.ID("a"))
	require.Equal(t, text.UNKID, v.ID("zzz"))
	require.Equal(t, "c", v.Word(7))
	require.True(t, v.Has("b"))
	require.False(t, v.Has("d"))
	require.Equal(t, []string{"how", "many", "red", "circles", "?"}, text.Tokenize("How many  RED circles?"))

	s1, s2 := SceneVocab(), SceneVocab()
	require.Equal(t, s1.Words(), s2.Words())
	for i := 0; i <= MaxCount; i++ {
		require.True(t, s1.Has(strconv.Itoa(i)))
	}
}

func TestConfigValidation(t *testing.T) {
	for name, mod := range map[string]func(*SceneConfig){
		"shape":      func(c *SceneConfig) { c.Shapes = []string{"circle", "hexagon"} },
		"color":      func(c *SceneConfig) { c.Colors = []string{"magenta"} },
		"objects":    func(c *SceneConfig) { c.MinObjects, c.MaxObjects = 5, 3 },
		"size":       func(c *SceneConfig) { c.MinSize, c.MaxSize = 0.3, 0.2 },
		"background": func(c *SceneConfig) { c.Background = "stripes" },
		"fraction":   func(c *SceneConfig) { c.CountingFraction = 1.5 },
		"imageSize":  func(c *SceneConfig) { c.ImageSize = 0 },
	} {
		cfg := DefaultSceneConfig()
		mod(&cfg)
		_, err := NewSceneGenerator(cfg)
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "\n", name)
	}
}

func TestDeterminism(t *testing.T) {
	g := newGen(t, nil)
	gen := func(seed uint64) []Example {
		rng := NewRand(seed)
		var out []Example
		for i := 0; i < 50; i++ {
			out = append(out, g.Example(rng, ""))
		}
		return out
	}
	a, b, c := gen(1), gen(1), gen(2)
	same := true
	for i := range a {
		require.Equal(t, a[i].Image, b[i].Image)
		require.Equal(t, a[i].Question, b[i].Question)
		require.Equal(t, a[i].Answer, b[i].Answer)
		require.Equal(t, a[i].Kind, b[i].Kind)
		if !slices.Equal(a[i].Image, c[i].Image) {
			same = false
		}
	}
	require.False(t, same, "different seeds should give different images")
	// Render is a pure function of the scene.
	require.Equal(t, a[0].Image, g.Render(*a[0].Scene))
}

func TestCountsAndNoOverlap(t *testing.T) {
	g := newGen(t, func(c *SceneConfig) { c.MinObjects, c.MaxObjects = 2, 7 })
	rng := NewRand(3)
	seen := map[int]bool{}
	for i := 0; i < 500; i++ {
		ex := g.Example(rng, "counting")
		s := ex.Scene
		n := len(s.Objects)
		require.GreaterOrEqual(t, n, 2)
		require.LessOrEqual(t, n, 7)
		seen[n] = true
		// Recompute the answer from the question and the scene.
		toks := text.Tokenize(ex.Question)
		require.Equal(t, []string{"how", "many"}, toks[:2])
		require.Equal(t, "?", toks[len(toks)-1])
		color, shape := "", ""
		for _, w := range toks[2 : len(toks)-1] {
			switch {
			case slices.Contains(allColors, w):
				color = w
			case w == "objects":
			default:
				for _, sh := range allShapes {
					if plural(sh) == w {
						shape = sh
					}
				}
				require.NotEmpty(t, shape, "unexpected word %q", w)
			}
		}
		want := 0
		for _, o := range s.Objects {
			if (color == "" || o.Color == color) && (shape == "" || o.Shape == shape) {
				want++
			}
		}
		require.Equal(t, strconv.Itoa(want), ex.Answer, ex.Question)
		// No overlap and inside the image.
		for a := range s.Objects {
			oa := s.Objects[a]
			require.GreaterOrEqual(t, oa.X-oa.Size/2, 0.0)
			require.LessOrEqual(t, oa.X+oa.Size/2, 1.0)
			require.GreaterOrEqual(t, oa.Size, 0.14)
			require.LessOrEqual(t, oa.Size, 0.22)
			for b := a + 1; b < n; b++ {
				ob := s.Objects[b]
				d := (oa.Size + ob.Size) / 2
				require.False(t, math.Abs(oa.X-ob.X) < d && math.Abs(oa.Y-ob.Y) < d, "objects %d and %d overlap", a, b)
			}
		}
	}
	require.Len(t, seen, 6)

	// OOD counts above MaxObjects.
	for i := 0; i < 50; i++ {
		ex := g.CountingExample(rng, 10, 12)
		require.Contains(t, []int{10, 11, 12}, len(ex.Scene.Objects))
		require.Equal(t, "counting", ex.Kind)
	}
	// Impossible placement degrades gracefully.
	big := newGen(t, func(c *SceneConfig) { c.MinSize, c.MaxSize = 0.45, 0.5 })
	s := big.Sample(rng, 10, 10)
	require.Less(t, len(s.Objects), 10)
	require.GreaterOrEqual(t, len(s.Objects), 1)
}

func TestObjectsVisible(t *testing.T) {
	g := newGen(t, nil)
	rng := NewRand(5)
	for i := 0; i < 200; i++ {
		s := g.Sample(rng, 1, 1)
		img := g.Render(s)
		o := s.Objects[0]
		rgb := colorRGB[o.Color]
		n := 32
		cnt := 0
		for p := 0; p < n*n; p++ {
			if img[p*3] == rgb[0] && img[p*3+1] == rgb[1] && img[p*3+2] == rgb[2] {
				cnt++
			}
		}
		require.GreaterOrEqual(t, cnt, 5, "%+v", o)
		// Background stays dark.
		require.LessOrEqual(t, img[0], float32(0.36))
	}
}

func TestGeneralQuestions(t *testing.T) {
	g := newGen(t, func(c *SceneConfig) { c.MinObjects, c.MaxObjects = 1, 8 })
	rng := NewRand(7)
	yes, no := 0, 0
	kinds := map[string]int{}
	for i := 0; i < 1000; i++ {
		ex := g.Example(rng, "presence")
		require.Equal(t, "presence", ex.Kind)
		switch ex.Answer {
		case "yes":
			yes++
		case "no":
			no++
		default:
			t.Fatalf("bad presence answer %q", ex.Answer)
		}
		toks := text.Tokenize(ex.Question)
		want := "no"
		if ex.Scene.Count(toks[3], toks[4]) > 0 {
			want = "yes"
		}
		require.Equal(t, want, ex.Answer)
	}
	require.InDelta(t, 500, yes, 80)
	require.InDelta(t, 500, no, 80)

	for i := 0; i < 1000; i++ {
		ex := g.Example(rng, "general")
		kinds[ex.Kind]++
		s := ex.Scene
		toks := text.Tokenize(ex.Question)
		switch ex.Kind {
		case "color":
			require.Equal(t, 1, s.Count("", toks[4]))
			require.Equal(t, 1, s.Count(ex.Answer, toks[4]))
		case "shape":
			require.Equal(t, 1, s.Count(toks[4], ""))
			require.Equal(t, 1, s.Count(toks[4], ex.Answer))
		case "position":
			require.Equal(t, 1, s.Count(toks[2], toks[3]))
			for _, o := range s.Objects {
				if o.Color == toks[2] && o.Shape == toks[3] {
					switch ex.Answer {
					case "left":
						require.Less(t, o.X, 0.5)
					case "right":
						require.Greater(t, o.X, 0.5)
					case "top":
						require.Less(t, o.Y, 0.5)
					case "bottom":
						require.Greater(t, o.Y, 0.5)
					default:
						t.Fatalf("bad position answer %q", ex.Answer)
					}
				}
			}
		case "presence":
		default:
			t.Fatalf("unexpected kind %q", ex.Kind)
		}
	}
	for _, k := range []string{"color", "shape", "position", "presence"} {
		require.Greater(t, kinds[k], 100, "kind %s: %v", k, kinds)
	}

	// Zero objects: always falls back to presence.
	empty := newGen(t, func(c *SceneConfig) { c.MinObjects, c.MaxObjects = 0, 0 })
	for i := 0; i < 20; i++ {
		ex := empty.Example(rng, "color")
		require.Equal(t, "presence", ex.Kind)
		require.Equal(t, "no", ex.Answer)
	}
	require.Panics(t, func() { g.Example(rng, "bogus") })
}

func TestAllWordsInVocab(t *testing.T) {
	v := SceneVocab()
	g := newGen(t, func(c *SceneConfig) { c.MinObjects, c.MaxObjects = 0, 10 })
	rng := NewRand(11)
	kinds := map[string]bool{}
	for i := 0; i < 2000; i++ {
		ex := g.Example(rng, "")
		kinds[ex.Kind] = true
		for _, w := range append(text.Tokenize(ex.Question), text.Tokenize(ex.Answer)...) {
			require.True(t, v.Has(w), "word %q of %q -> %q not in SceneVocab", w, ex.Question, ex.Answer)
		}
	}
	require.Len(t, kinds, 5)
	for i := 0; i < 20; i++ {
		ex := g.CountingExample(rng, 40, 50) // cannot all fit: answer still in vocab
		require.True(t, v.Has(ex.Answer))
	}
}

func TestEncodeQA(t *testing.T) {
	v := text.NewVocab([]string{"how", "many", "?", "3"})
	// ids: how=5 many=6 ?=7 3=8
	x, y, m, err := EncodeQA(v, "how many ?", "3", 9)
	require.NoError(t, err)
	require.Equal(t, []int32{text.BOSID, 5, 6, 7, text.SEPID, 8, text.EOSID, text.PadID, text.PadID}, x)
	require.Equal(t, []int32{5, 6, 7, text.SEPID, 8, text.EOSID, text.PadID, text.PadID, text.PadID}, y)
	require.Equal(t, []float32{0, 0, 0, 0, 1, 1, 0, 0, 0}, m)

	// Exact fit.
	x, y, m, err = EncodeQA(v, "how many ?", "3", 7)
	require.NoError(t, err)
	require.Equal(t, int32(text.EOSID), x[6])
	require.Equal(t, []int32{5, 6, 7, text.SEPID, 8, text.EOSID, text.PadID}, y)
	require.Equal(t, []float32{0, 0, 0, 0, 1, 1, 0}, m)

	// Unknown word.
	x, _, _, err = EncodeQA(v, "how much", "3", 8)
	require.NoError(t, err)
	require.Equal(t, int32(text.UNKID), x[2])

	_, _, _, err = EncodeQA(v, "how many ?", "3", 6)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "\n")
}

func TestMakeVQABatch(t *testing.T) {
	g := newGen(t, nil)
	v := SceneVocab()
	rng := NewRand(1)
	exs := []Example{g.Example(rng, ""), g.Example(rng, ""), g.Example(rng, "")}
	b, err := MakeVQABatch(v, exs, 32, 16)
	require.NoError(t, err)
	require.Equal(t, 3, b.Size)
	require.Len(t, b.Images, 3*32*32*3)
	require.Len(t, b.Tokens, 3*16)
	require.Len(t, b.Targets, 3*16)
	require.Len(t, b.Mask, 3*16)
	require.Len(t, b.Kinds, 3)
	require.Equal(t, exs[2].Answer, b.Answers[2])
	require.Equal(t, exs[1].Image, b.Images[32*32*3:2*32*32*3])
	x, _, _, _ := EncodeQA(v, exs[1].Question, exs[1].Answer, 16)
	require.Equal(t, x, b.Tokens[16:32])

	_, err = MakeVQABatch(v, exs, 64, 16)
	require.ErrorContains(t, err, "example 0")
	_, err = MakeVQABatch(v, exs, 32, 4)
	require.Error(t, err)
}

func TestFolderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	g := newGen(t, nil)
	require.NoError(t, WriteFolderSample(dir, 12, g, 42))
	exs, err := LoadFolder(dir, filepath.Join(dir, "questions.jsonl"), 32)
	require.NoError(t, err)
	require.Len(t, exs, 12)

	rng := NewRand(42)
	for i, ex := range exs {
		want := g.Example(rng, "")
		require.Equal(t, want.Question, ex.Question)
		require.Equal(t, want.Answer, ex.Answer)
		require.Equal(t, want.Kind, ex.Kind)
		require.Equal(t, 32, ex.Size)
		require.Len(t, ex.Image, 32*32*3)
		for j := range ex.Image {
			require.InDelta(t, want.Image[j], ex.Image[j], 1.0/255, "example %d value %d", i, j)
		}
	}

	// Resizing down and up.
	small, err := LoadFolder(dir, filepath.Join(dir, "questions.jsonl"), 16)
	require.NoError(t, err)
	require.Len(t, small[0].Image, 16*16*3)
	// Area average: mean brightness is preserved.
	mean := func(v []float32) float64 {
		s := 0.0
		for _, x := range v {
			s += float64(x)
		}
		return s / float64(len(v))
	}
	require.InDelta(t, mean(exs[0].Image), mean(small[0].Image), 1e-3)
	bigger, err := LoadFolder(dir, filepath.Join(dir, "questions.jsonl"), 48)
	require.NoError(t, err)
	require.Len(t, bigger[0].Image, 48*48*3)
	require.InDelta(t, mean(exs[0].Image), mean(bigger[0].Image), 0.02)
}

func TestFolderErrors(t *testing.T) {
	dir := t.TempDir()
	g := newGen(t, nil)
	require.NoError(t, WriteFolderSample(dir, 2, g, 1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.png"), []byte("definitely not an image"), 0o644))
	good := `{"image": "images/img_00000.png", "question": "how many objects ?", "answer": "2"}`
	q := filepath.Join(dir, "q.jsonl")
	check := func(content, want string) {
		t.Helper()
		require.NoError(t, os.WriteFile(q, []byte(content), 0o644))
		_, err := LoadFolder(dir, q, 32)
		require.Error(t, err)
		require.Contains(t, err.Error(), want)
		require.NotContains(t, err.Error(), "\n")
	}
	check(good+"\n"+good+"\n{not json\n", q+":3: invalid JSON")
	check(good+"\n\n"+`{"image": "images/img_00000.png", "question": "q"}`+"\n", q+`:3: missing field "answer"`)
	check(good+"\n"+`{"image": "x.png", "question": "q", "answer": "a"}`, q+`:2: image "x.png": open `)
	check(`{"image": "bad.png", "question": "q", "answer": "a"}`, q+`:1: image "bad.png": not a PNG or JPEG image`)
	check("\n  \n", q+": no examples")

	require.NoError(t, os.WriteFile(q, []byte(good+"\n"+good+"\n"), 0o644))
	exs, err := LoadFolder(dir, q, 32)
	require.NoError(t, err)
	require.Equal(t, "general", exs[0].Kind)
	require.Same(t, &exs[0].Image[0], &exs[1].Image[0], "images are cached by path")
}

func TestStreamOrder(t *testing.T) {
	var calls atomic.Int64
	mk := func(i int64) (string, error) {
		calls.Add(1)
		r := rand.New(rand.NewPCG(uint64(i), 0))
		time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
		if i == 17 {
			return "", fmt.Errorf("boom %d", i)
		}
		return fmt.Sprint("item", i), nil
	}
	before := runtime.NumGoroutine()
	s := NewStream(5, 8, 4, mk)
	for i := int64(5); i < 60; i++ {
		v, err := s.Next()
		if i == 17 {
			require.EqualError(t, err, "boom 17")
			continue
		}
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("item", i), v)
	}
	s.Close()
	s.Close()
	_, err := s.Next()
	require.ErrorIs(t, err, ErrStreamClosed)
	waitGoroutines(t, before)
	n := calls.Load()
	require.LessOrEqual(t, n, int64(55+8+4+1), "read ahead is bounded")
	time.Sleep(20 * time.Millisecond)
	require.Equal(t, n, calls.Load(), "no calls after Close")

	// Synchronous mode and panics.
	sy := NewStream(0, 0, 0, func(i int64) (int64, error) {
		if i == 2 {
			panic("oops")
		}
		return i * i, nil
	})
	for i := int64(0); i < 4; i++ {
		v, err := sy.Next()
		if i == 2 {
			require.ErrorContains(t, err, "panic: oops")
			continue
		}
		require.NoError(t, err)
		require.Equal(t, i*i, v)
	}
	sy.Close()

	// Close while Next is blocked, with a stream that never got consumed.
	block := make(chan struct{})
	bs := NewStream(0, 2, 0, func(i int64) (int, error) { <-block; return 0, nil })
	done := make(chan error)
	go func() { _, err := bs.Next(); done <- err }()
	time.Sleep(5 * time.Millisecond)
	go func() { time.Sleep(5 * time.Millisecond); close(block) }()
	bs.Close()
	err = <-done
	if err != nil {
		require.True(t, errors.Is(err, ErrStreamClosed))
	}
	waitGoroutines(t, before)
}

func TestStreamDeterministicAcrossWorkers(t *testing.T) {
	g := newGen(t, nil)
	mk := func(i int64) (Example, error) { return g.Example(NewRand(uint64(i)), ""), nil }
	collect := func(workers int) []string {
		s := NewStream(0, 16, workers, mk)
		defer s.Close()
		var out []string
		for i := 0; i < 40; i++ {
			ex, err := s.Next()
			require.NoError(t, err)
			out = append(out, ex.Question+"|"+ex.Answer+"|"+fmt.Sprint(ex.Image[:30]))
		}
		return out
	}
	require.Equal(t, collect(1), collect(8))
}

func BenchmarkExample32(b *testing.B) {
	g := newGen(b, nil)
	rng := NewRand(1)
	for b.Loop() {
		g.Example(rng, "")
	}
}

func BenchmarkExample224(b *testing.B) {
	g := newGen(b, func(c *SceneConfig) { c.ImageSize = 224 })
	rng := NewRand(1)
	for b.Loop() {
		g.Example(rng, "")
	}
}

// waitGoroutines waits until at most n goroutines run (not require.Eventually:
// it runs its condition in an extra goroutine).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("goroutine leak: %d running, want <= %d", runtime.NumGoroutine(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
