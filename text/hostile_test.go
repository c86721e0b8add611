package text

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A Split regex with catastrophic backtracking on the text given is an error naming the pattern,
// never ids computed as if the timed-out match had found nothing.
func TestHostileRegexTimeoutIsAnError(t *testing.T) {
	defer func(d time.Duration) { regexTimeout = d }(regexTimeout)
	regexTimeout = 50 * time.Millisecond
	const pattern = `(a|aa)+$`
	tok := `{"model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1, "[UNK]": 2}, "unk_token": "[UNK]"},
		"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
			{"type": "Split", "pattern": {"Regex": "(a|aa)+$"}, "behavior": "Isolated"},
			{"type": "Split", "pattern": {"Regex": "(a|aa)+$"}, "behavior": "Isolated"},
			{"type": "Split", "pattern": {"Regex": "(a|aa)+$"}, "behavior": "Isolated"}]}}`
	p := writeFile(t, t.TempDir(), "tokenizer.json", tok)
	tk, err := Load(p)
	require.NoError(t, err)
	ids, err := SafeEncode(tk, "ab", false) // harmless text: answers
	require.NoError(t, err)
	require.Equal(t, []int{2}, ids)
	hostile := strings.Repeat("a", 60) + "b"
	ids, err = SafeEncode(tk, hostile, false)
	var te *PatternTimeoutError
	require.True(t, errors.As(err, &te), "got ids %v, err %v", ids, err)
	require.Nil(t, ids)
	require.Contains(t, err.Error(), pattern)
	require.NotContains(t, err.Error(), "\n")
	// Three such pieces do not cost three timeouts: the first stops the encoding.
	ids, err = SafeEncode(tk, hostile+" "+hostile+" "+hostile, true)
	require.Error(t, err)
	require.Nil(t, ids)
}

// Special files and oversized inputs are refused by name, without blocking.
func TestHostileTokenizerFiles(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero", "tokenizer.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(zero), 0o755))
	require.NoError(t, os.Symlink("/dev/zero", zero))
	fifo := filepath.Join(dir, "fifo", "tokenizer.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(fifo), 0o755))
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	cfgFifo := filepath.Join(dir, "cfg")
	require.NoError(t, os.MkdirAll(cfgFifo, 0o755))
	b, err := os.ReadFile(filepath.Join("testdata", "llama2.json"))
	require.NoError(t, err)
	writeFile(t, cfgFifo, "tokenizer.json", string(b))
	require.NoError(t, syscall.Mkfifo(filepath.Join(cfgFifo, "tokenizer_config.json"), 0o644))
	for _, c := range []struct{ path, want string }{
		{zero, "tokenizer.json: is a character device"},
		{filepath.Dir(zero), "tokenizer.json: is a character device"},
		{fifo, "tokenizer.json: is a named pipe"},
		{cfgFifo, "tokenizer_config.json: is a named pipe"},
	} {
		done := make(chan error, 1)
		go func() { _, err := Load(c.path); done <- err }()
		select {
		case err := <-done:
			require.ErrorContains(t, err, c.want, c.path)
			require.NotContains(t, err.Error(), "\n")
		case <-time.After(20 * time.Second):
			t.Fatalf("Load(%s) blocked", c.path)
		}
	}
}

// merges entries of the wrong type are named.
func TestHostileMerges(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ merges, want string }{
		{`["a b", ["a", "b"]]`, "not a mix of both"},
		{`[["a", "b"], ["a", 7]]`, `model.merges[1]: expected "a b" or ["a", "b"], got ["a", 7]`},
		{`[["a", "b"], ["a", "b", "c"]]`, `model.merges[1]`},
		{`[["a", "zz"]]`, `token "zz" is not in model.vocab`},
	} {
		p := writeFile(t, dir, "tokenizer.json", `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": `+c.merges+`}}`)
		_, err := Load(p)
		require.ErrorContains(t, err, c.want, c.merges)
		require.ErrorContains(t, err, p)
	}
}
