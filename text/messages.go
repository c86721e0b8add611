package text

import (
	"github.com/reelml/reel/internal/safeio"
)

// MaxMessagesFile bounds a file ReadMessages reads.
const MaxMessagesFile = 64 << 20

// ReadMessages reads a file of chat messages for RenderJSON ('reel hf template --messages'), at
// most MaxMessagesFile bytes; whether it is JSON is left to the caller.
func ReadMessages(path string) ([]byte, error) {
	return safeio.ReadFile(path, MaxMessagesFile)
}
