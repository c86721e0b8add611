package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/reelml/reel/internal/intlist"
)

// The flag helpers every command uses (usageFunc, beside the command table, prints their usage).

// newFlags is a command's flag set: flags listed in the order they are defined.
func newFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

// parse parses flags, mapping flag errors to exit status 2.
func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return &exitError{0, errors.New("help requested")}
		}
		return &exitError{2, fmt.Errorf("%s: %w", fs.Name(), err)}
	}
	return nil
}

// parseArgs parses flags like parse and wants n arguments, else a usage error
// "NAME: expected WHAT, got K arguments".
func parseArgs(fs *pflag.FlagSet, args []string, n int, what string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != n {
		return &exitError{2, fmt.Errorf("%s: %s, got %d arguments", fs.Name(), what, fs.NArg())}
	}
	return nil
}

// intFlagList parses a comma-separated flag value with the one list parser (usage errors: exit 2).
func intFlagList(cmd, flag, s string, ok func(int) bool, want string) ([]int, error) {
	l, err := intlist.Parse(s, ok, want)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("%s: %s: %w", cmd, flag, err)}
	}
	return l, nil
}
