// Command reel trains, evaluates and inspects recipe-driven video / VLA models.
//
//	reel train NAME|FILE [--out DIR] [--set k=v]... [--resume]
//	reel eval RUN_DIR|CHECKPOINT_DIR [--set k=v]... [--all]
//	reel recipes list | show NAME | cp NAME FILE | validate FILE
//	reel analyze patching|heads RUN_DIR
//	reel tokenize RUN_DIR VIDEO_FILE [--out DIR]
//	reel hf tokenize PATH --text T [--special] | --decode 1,2,3
//	reel bench stts [--frames 16,32,64,128]
//	reel data audit FILE.jsonl [--json]
//	reel data gen-sim --episodes N --out DIR [--workers W]
//	reel serve RUN_DIR [--addr HOST:PORT]
//	reel export RUN_DIR --format safetensors
//	reel doctor
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

const usage = `reel — recipe-driven training of video and VLA models in Go

Usage:
  reel train NAME|FILE [--out DIR] [--set key=value]... [--resume] [--backend B]
  reel eval RUN_DIR|CHECKPOINT_DIR [--set key=value]... [--all] [--backend B]
  reel recipes list
  reel recipes show NAME|FILE [--set key=value]...
  reel recipes cp NAME FILE
  reel recipes validate FILE [--set key=value]...
  reel doctor
  reel analyze patching|heads RUN_DIR|CHECKPOINT_DIR [flags]
  reel tokenize RUN_DIR|CHECKPOINT_DIR VIDEO_FILE [--out DIR]
  reel hf tokenize PATH --text TEXT [--special] | --decode 1,2,3
  reel bench stts [--frames 16,32,64,128] [--steps N]
  reel data audit FILE.jsonl [--json]
  reel data gen-video --n N --out DIR [flags]
  reel data gen-sim --episodes N --out DIR [--workers W] [flags]
  reel serve RUN_DIR|CHECKPOINT_DIR [--addr 127.0.0.1:8000]
  reel eval RUN_DIR --remote ws://HOST:PORT
  reel export RUN_DIR|CHECKPOINT_DIR --format safetensors [--out FILE]

Run 'reel COMMAND --help' for the flags of a command.
`

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch args[0] {
	case "train":
		err = cmdTrain(args[1:])
	case "eval":
		err = cmdEval(args[1:])
	case "recipes":
		err = cmdRecipes(args[1:])
	case "doctor":
		err = cmdDoctor(args[1:])
	case "analyze":
		err = cmdAnalyze(args[1:])
	case "tokenize":
		err = cmdTokenize(args[1:])
	case "hf":
		err = cmdHF(args[1:])
	case "bench":
		err = cmdBench(args[1:])
	case "data":
		err = cmdData(args[1:])
	case "serve":
		err = cmdServe(args[1:])
	case "export":
		err = cmdExport(args[1:])
	default:
		err = &exitError{2, fmt.Errorf("unknown command %q (commands: train, eval, serve, export, recipes, analyze, tokenize, hf, bench, data, doctor)", args[0])}
	}
	var ee *exitError
	if err == nil || (errors.As(err, &ee) && ee.code == 0) { // success, or --help
		return 0
	}
	fmt.Fprintln(os.Stderr, "reel: "+firstLine(err))
	if ee != nil {
		return ee.code
	}
	return 1
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
