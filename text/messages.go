package text

import (
	"fmt"
	"io"
	"os"
)

// MaxMessagesFile bounds a file ReadMessages reads.
const MaxMessagesFile = 64 << 20

// ReadMessages reads a file of chat messages for RenderJSON ('reel hf template --messages'), at
// most MaxMessagesFile bytes; whether it is JSON is left to the caller.
func ReadMessages(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxMessagesFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > MaxMessagesFile {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, MaxMessagesFile>>20)
	}
	return b, nil
}
