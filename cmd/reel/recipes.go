package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/reelml/reel/recipes"
)

func cmdRecipes(args []string) error {
	if len(args) == 0 {
		return &exitError{2, errors.New("recipes: expected a subcommand: list, show, cp or validate")}
	}
	fs := newFlags("recipes " + args[0])
	sets := fs.StringArray("set", nil, "override a recipe field (show, validate)")
	force := fs.Bool("force", false, "cp: overwrite FILE if it exists")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	want := map[string]int{"list": 0, "show": 1, "cp": 2, "validate": 1}
	n, ok := want[args[0]]
	if !ok {
		return &exitError{2, fmt.Errorf("recipes: unknown subcommand %q (list, show, cp, validate)", args[0])}
	}
	if fs.NArg() != n {
		return &exitError{2, fmt.Errorf("recipes %s: expected %d argument(s), got %d", args[0], n, fs.NArg())}
	}
	switch args[0] {
	case "list":
		return recipes.WriteList(os.Stdout)
	case "show":
		r, err := recipes.Load(fs.Arg(0), *sets)
		if err != nil {
			return err
		}
		b, err := r.YAML()
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	case "cp":
		src, err := recipes.Source(fs.Arg(0))
		if err != nil {
			return err
		}
		dst := fs.Arg(1)
		if _, err := os.Stat(dst); err == nil && !*force {
			return fmt.Errorf("recipes cp: %s already exists (pass --force to overwrite)", dst)
		}
		if err := os.WriteFile(dst, src, 0o644); err != nil {
			return fmt.Errorf("recipes cp: %w", err)
		}
		fmt.Fprintf(os.Stderr, "reel: wrote %s; edit it, then: reel train %s\n", dst, dst)
		return nil
	case "validate":
		r, err := recipes.Load(fs.Arg(0), *sets)
		if err != nil {
			return err
		}
		fmt.Printf("%s: ok (recipe %q, task %s, %d steps)\n", fs.Arg(0), r.Name, r.Task, r.Train.Steps)
	}
	return nil
}
