package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		args       []string
		positional []string
		key        string
		json       bool
		emails     []string
		wantErr    bool
	}{
		{"flags after positionals", []string{"acme", "10", "--key", "K", "--json"}, []string{"acme", "10"}, "K", true, nil, false},
		{"flags before positionals", []string{"--json", "--key", "K", "acme", "10"}, []string{"acme", "10"}, "K", true, nil, false},
		{"flags between positionals", []string{"acme", "--key=K", "10"}, []string{"acme", "10"}, "K", false, nil, false},
		{"single dash", []string{"-key", "K", "acme"}, []string{"acme"}, "K", false, nil, false},
		{"empty value", []string{"acme", "--key", ""}, []string{"acme"}, "", false, nil, false},
		{"empty value with =", []string{"--key=", "acme"}, []string{"acme"}, "", false, nil, false},
		{"value that looks like a flag", []string{"--key", "--json", "acme"}, []string{"acme"}, "--json", false, nil, false},
		{"boolean flag takes no value", []string{"--json", "acme"}, []string{"acme"}, "", true, nil, false},
		{"boolean flag with =", []string{"--json=false", "acme"}, []string{"acme"}, "", false, nil, false},
		{"repeated flag", []string{"--email", "a@x", "acme", "--email=b@x"}, []string{"acme"}, "", false, []string{"a@x", "b@x"}, false},
		{"double dash ends flags", []string{"acme", "--", "--json", "-5"}, []string{"acme", "--json", "-5"}, "", false, nil, false},
		{"negative number is positional", []string{"acme", "-5", "--key", "K"}, []string{"acme", "-5"}, "K", false, nil, false},
		{"negative fraction is positional", []string{"acme", "-.5"}, []string{"acme", "-.5"}, "", false, nil, false},
		{"lone dash is positional", []string{"-"}, []string{"-"}, "", false, nil, false},
		{"unknown flag", []string{"acme", "--bogus"}, nil, "", false, nil, true},
		{"missing value", []string{"acme", "--key"}, nil, "", false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			key := fs.String("key", "", "")
			asJSON := fs.Bool("json", false, "")
			var emails stringList
			fs.Var(&emails, "email", "")
			flags, pos := splitArgs(fs, tc.args)
			err := fs.Parse(flags)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error for %q", tc.args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tc.positional) || *key != tc.key || *asJSON != tc.json || !slices.Equal(emails, tc.emails) || fs.NArg() != 0 {
				t.Fatalf("positional %q key %q json %v emails %q rest %q; want %q %q %v %q",
					pos, *key, *asJSON, emails, fs.Args(), tc.positional, tc.key, tc.json, tc.emails)
			}
		})
	}
}
