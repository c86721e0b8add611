// Command reel trains, evaluates, serves and inspects recipe-driven video and VLA models; `reel
// --help` lists every command (the table below).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/reelml/reel/internal/errline"
	usageerr "github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/text"
)

// command is one `reel` command: its name, the usage lines `reel --help` shows (one per
// subcommand for the commands that have them) and its entry point.
type command struct {
	name  string
	usage []string
	run   func(args []string) error
}

// commands are every `reel` command, in the order `reel --help` lists them (set in init: the
// group commands' dispatchers print their part of the table).
var commands []command

func init() { commands = commandTable() }

func commandTable() []command {
	return []command{
		{"train", []string{"train NAME|FILE [--out DIR] [--set key=value]... [--resume] [--overwrite] [--stop-after N] [--backend B]"}, cmdTrain},
		{"eval", []string{
			"eval RUN_DIR|CHECKPOINT_DIR|LEROBOT_POLICY_DIR [--set key=value]... [--all] [--baseline DIR|none] [--backend B]",
			"eval RUN_DIR --remote ws://HOST:PORT [--max-connections N] [--act-timeout D] [--shard-id I --num-shards N] [--results DIR]",
			"eval merge SHARD_RESULTS... --out FILE",
		}, cmdEval},
		{"serve", []string{"serve RUN_DIR|CHECKPOINT_DIR|LEROBOT_POLICY_DIR [--addr 127.0.0.1:8000] [--max-batch N] [--batch-window D] [--camera BENCH=POLICY]... [--resize M] [--state-dims I,J|none] [--action-dim N] [--chunking newest|average|ema|rtc [--ema-weight W] [--inference-delay D] [--rtc-horizon N] [--max-guidance B] [--rtc-schedule S]]"}, cmdServe},
		{"export", []string{"export RUN_DIR|CHECKPOINT_DIR --format safetensors [--out FILE]", "export RUN_DIR|CHECKPOINT_DIR --format hf|peft|lerobot [--out DIR] [--ema]"}, cmdExport},
		{"recipes", []string{
			"recipes list",
			"recipes show NAME|FILE [--set key=value]...",
			"recipes cp NAME FILE",
			"recipes validate FILE [--set key=value]...",
		}, cmdRecipes},
		{"data", []string{
			"data audit FILE.jsonl [--json]",
			"data gen-video --n N --out DIR [flags]",
			"data gen-sim --episodes N --out DIR [--format v3.0|v2.1] [--shard I/N] [--workers W] [flags]",
			"data gen-reward --episodes N --out DIR [--seed S] [--eval] [--shard I/N] [flags]",
			"data merge DIR... --out DIR [--overwrite]",
			"data stats DIR [--json] [--images]",
		}, cmdData},
		{"analyze", []string{"analyze patching|heads RUN_DIR|CHECKPOINT_DIR [flags]"}, cmdAnalyze},
		{"tokenize", []string{"tokenize RUN_DIR|CHECKPOINT_DIR VIDEO_FILE [--out DIR]"}, cmdTokenize},
		{"hf", []string{
			"hf tokenize PATH --text TEXT [--special] | --decode 1,2,3",
			"hf inspect DIR [--mapping] [--json]",
			"hf run DIR --tokens 1,2,3 [--tokens …] [--token-types 0,0,1] [--pixels FILE.npy | --image FILE] [--video FILE [--video-frames N]]",
			"hf generate DIR --tokens 1,2,3 | --prompt TEXT [--chat [--var NAME=VALUE]...] [--image FILE | --pixels FILE.npy | --video FILE] [--max-new-tokens N]",
			"hf template PATH --messages FILE.json [--add-generation-prompt=false] [--var NAME=VALUE]...",
			"hf init CONFIG.json --out DIR [--seed S]",
		}, cmdHF},
		{"reward", []string{"reward progress MODEL|--oracle --data DIR [--prefixes 15] [--episodes N] [--out FILE] [--write]"}, cmdReward},
		{"bench", []string{
			"bench vit [--size tiny|s|b] [--tokens 16,64,...] [--precision f32|bf16] [flags]",
			"bench video [--arch vivit|trajvit2|stts] [--size tiny|b] [--frames 4,8,...] [flags]",
			"bench stts [--frames 16,32,64,128] [--steps N] [--set key=value]...",
			"bench rdvla [--depths 4,32,64] [--steps N] [--batch B]",
			"bench data [--episodes N] [--width W] [--height H] [--size S] [flags]",
			"bench serve [RUN_DIR] [--sessions 32] [--duration 60s] [--max-batch 16,1] [--episode-steps N]",
			"bench hf [--model llama|siglip|qwenvl|all] [--batch B] [--seq T] [--runs N] [--precision f32|bf16]",
			"bench finetune [--model paligemma|pi0|pi0-small] [--modes full,lora,frozen] [--latency] [--batch B] [--steps N] [--rounds R] [--lora-rank R] [--freeze GLOB] [--json]",
		}, cmdBench},
		{"doctor", []string{"doctor"}, cmdDoctor},
	}
}

// usage is what `reel --help` prints.
func usage() string {
	var b strings.Builder
	b.WriteString("reel — recipe-driven training of video and VLA models in Go\n\nUsage:\n")
	for _, c := range commands {
		for _, u := range c.usage {
			b.WriteString("  reel " + u + "\n")
		}
	}
	b.WriteString("\nRun 'reel COMMAND --help' for the flags of a command.\n")
	return b.String()
}

// dispatch runs the subcommand args[0] of a command group (bench, data, …) from its table; with
// --help it prints the group's lines of `reel --help`.
func dispatch(group string, subs map[string]func(args []string) error, args []string) error {
	names := slices.Sorted(maps.Keys(subs))
	if len(args) == 0 {
		return &exitError{2, fmt.Errorf("%s: expected a subcommand: %s (reel %s --help lists them)", group, strings.Join(names, ", "), group)}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		for _, c := range commands {
			if c.name == group {
				fmt.Fprintf(os.Stderr, "Usage:\n")
				for _, u := range c.usage {
					fmt.Fprintf(os.Stderr, "  reel %s\n", u)
				}
			}
		}
		fmt.Fprintf(os.Stderr, "\nRun 'reel %s SUBCOMMAND --help' for its flags.\n", group)
		return &exitError{0, errors.New("help requested")}
	}
	run, ok := subs[args[0]]
	if !ok {
		return &exitError{2, fmt.Errorf("%s: unknown subcommand %q (%s)", group, args[0], strings.Join(names, ", "))}
	}
	return run(args[1:])
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError gives a package's usage.Error exit status 2.
func usageError(err error) error {
	if usageerr.Is(err) {
		return &exitError{2, err}
	}
	return err
}

// logf prints a progress line "reel: …" to stderr; warn a warning.
func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "reel: "+format+"\n", a...) }
func warn(w string)                { fmt.Fprintln(os.Stderr, "reel: warning: "+w) }

// usageFunc prints a command's usage text (a final newline of its own is dropped), then its flags.
func usageFunc(fs interface{ PrintDefaults() }, text string) func() {
	return func() {
		fmt.Fprint(os.Stderr, strings.TrimSuffix(text, "\n")+"\n\nFlags:\n")
		fs.PrintDefaults()
	}
}

// printJSON prints v as indented JSON on stdout.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJSONLine prints v as one line of JSON on stdout.
func printJSONLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", b)
	return err
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	found := false
	for _, c := range commands {
		if c.name == args[0] {
			found = true
			func() {
				defer text.RecoverTimeout(&err) // a tokenizer regex that ran out of time, wherever
				err = c.run(args[1:])
			}()
			break
		}
	}
	if !found {
		names := make([]string, len(commands))
		for i, c := range commands {
			names[i] = c.name
		}
		err = &exitError{2, fmt.Errorf("unknown command %q (commands: %s)", args[0], strings.Join(names, ", "))}
	}
	var ee *exitError
	if err == nil || (errors.As(err, &ee) && ee.code == 0) { // success, or --help
		return 0
	}
	fmt.Fprintln(os.Stderr, "reel: "+errline.First(err))
	if ee != nil {
		return ee.code
	}
	return 1
}
