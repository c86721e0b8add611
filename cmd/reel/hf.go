package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/reelml/reel/text"
)

const hfTokenizeUsage = `Usage: reel hf tokenize PATH --text TEXT [--special]
       reel hf tokenize PATH --decode 1,2,3

Encodes TEXT with the tokenizer at PATH and prints {"ids": [...]}; --special adds the
tokens the model puts around a sequence (BOS/EOS, [CLS]/[SEP], ...). With --decode, prints
{"text": "..."} for the given ids instead.`

// hfCommands are the subcommands of `reel hf`: local Hugging Face tokenizers and models (PATH
// is a local file or model directory; nothing is downloaded).
var hfCommands = map[string]func(args []string) error{
	"tokenize": cmdHFTokenize,
	"inspect":  hfInspect,
	"run":      hfRun,
	"generate": hfGenerate,
	"template": hfTemplate,
	"init":     hfInit,
}

// cmdHF dispatches 'reel hf SUBCOMMAND'.
func cmdHF(args []string) error {
	return dispatch("hf", hfCommands, args)
}

func cmdHFTokenize(args []string) error {
	fs := newFlags("hf tokenize")
	txt := fs.String("text", "", "text to encode")
	special := fs.Bool("special", false, "add the special tokens (add_special_tokens=True)")
	decode := fs.IntSlice("decode", nil, "ids to decode, comma separated, instead of encoding")
	fs.Usage = usageFunc(fs, hfTokenizeUsage)
	if err := parseArgs(fs, args, 1, "expected one tokenizer path"); err != nil {
		return err
	}
	hasText, hasDecode := fs.Changed("text"), fs.Changed("decode")
	if hasText == hasDecode {
		return &exitError{2, errors.New("hf tokenize: give either --text or --decode")}
	}
	tok, err := text.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if hasDecode {
		for _, id := range *decode { // the reference takes ids as u32 (ids past the vocabulary are skipped, as there)
			if id < 0 {
				return &exitError{2, fmt.Errorf("hf tokenize: --decode: id %d is negative", id)}
			}
		}
		return enc.Encode(map[string]string{"text": tok.Decode(*decode)})
	}
	ids, err := text.SafeEncode(tok, *txt, *special)
	if err != nil {
		return fmt.Errorf("hf tokenize: %s: %w", fs.Arg(0), err)
	}
	return enc.Encode(map[string][]int{"ids": ids})
}
