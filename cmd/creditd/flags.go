package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlagSet returns the FlagSet of one command. It reports nothing itself:
// parse turns its errors into usage errors and prints help on -h.
func newFlagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("creditd "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// splitArgs separates positional arguments from flags so that flags may come
// before, between or after positionals, as in
// `creditd grant ORG AMOUNT --source purchase --key K`, which the flag
// package alone stops parsing at ORG. A flag that takes a value consumes the
// next argument unless it is written --flag=value; boolean flags (those whose
// Value has IsBoolFlag) never do. "--" ends the flags. An argument that looks
// like a negative number ("-5", "-0.5") is positional, so that a negative
// amount is refused as an amount rather than as an unknown flag. A lone "-" is
// positional too.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !isFlag(a) {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue && takesValue(fs, name) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, positional
}

func isFlag(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	c := a[1]
	return !(c >= '0' && c <= '9' || c == '.')
}

// takesValue reports whether the flag called name needs a value. Unknown
// flags take none; fs.Parse refuses them.
func takesValue(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// parse parses args with fs and checks the positional arguments against
// names: each names one argument (used in messages: "org", "amount"), and a
// name ending in "?" is optional. The result has one element per name, ""
// for an optional argument not given. -h and --help print the command's help
// and return errHelp.
func (a *app) parse(c *command, fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	flags, pos := splitArgs(fs, args)
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.commandHelp(c, fs)
			return nil, errHelp
		}
		return nil, usageErrorf(c, "%v", err)
	}
	pos = append(pos, fs.Args()...) // empty: flags holds only flags and their values
	if len(pos) > len(names) {
		return nil, usageErrorf(c, "unexpected argument %q", pos[len(names)])
	}
	out := make([]string, len(names))
	for i, name := range names {
		switch {
		case i < len(pos):
			out[i] = pos[i]
		case !strings.HasSuffix(name, "?"):
			return nil, usageErrorf(c, "%s: required", name)
		}
	}
	return out, nil
}

// isSet reports whether the flag called name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// stringList is a flag that may be repeated: --email a@x --email b@y.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// jsonFlag adds the --json flag.
func jsonFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print one JSON document on stdout")
}

// commandHelp prints a command's synopsis, description and flags on stdout.
func (a *app) commandHelp(c *command, fs *flag.FlagSet) {
	fmt.Fprintf(a.stdout, "usage: creditd %s %s\n\n%s\n", c.name, c.args, c.help)
	if fs == nil {
		return
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(a.stdout, "\nflags:")
		fs.SetOutput(a.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}
