package main

import (
	"flag"
	"io"
	"slices"
	"strings"
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

// TestWorkerOptions checks that each worker flag out of bounds is refused
// with an error naming it, and that the defaults pass.
func TestWorkerOptions(t *testing.T) {
	t.Parallel()
	defaults := func(t *testing.T) workerOptions {
		t.Helper()
		var o workerOptions
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, tc := range []struct {
		name   string
		change func(*workerOptions)
		flag   string // named in the error; empty: valid
	}{
		{"defaults", func(*workerOptions) {}, ""},
		{"concurrency zero", func(o *workerOptions) { o.Concurrency = 0 }, "concurrency"},
		{"concurrency too high", func(o *workerOptions) { o.Concurrency = 10001 }, "concurrency"},
		{"usage concurrency zero", func(o *workerOptions) { o.UsageConcurrency = 0 }, "usage-concurrency"},
		{"usage concurrency too high", func(o *workerOptions) { o.UsageConcurrency = 10001 }, "usage-concurrency"},
		{"batch max zero", func(o *workerOptions) { o.BatchMax = 0 }, "batch-max"},
		{"batch wait zero", func(o *workerOptions) { o.BatchWait = 0 }, "batch-wait"},
		{"batch flushers zero", func(o *workerOptions) { o.BatchFlushers = 0 }, "batch-flushers"},
		{"batch flushers too many", func(o *workerOptions) { o.BatchFlushers = 65 }, "batch-flushers"},
		{"batch merge max zero", func(o *workerOptions) { o.BatchMergeMax = 0 }, "batch-merge-max"},
		{"batch merge max too high", func(o *workerOptions) { o.BatchMergeMax = 100001 }, "batch-merge-max"},
		{"shutdown timeout zero", func(o *workerOptions) { o.ShutdownTimeout = 0 }, "shutdown-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := defaults(t)
			tc.change(&o)
			err := o.validate()
			switch {
			case tc.flag == "" && err != nil:
				t.Fatalf("valid options refused: %v", err)
			case tc.flag != "" && err == nil:
				t.Fatalf("%+v accepted", o)
			case tc.flag != "" && !strings.HasPrefix(err.Error(), tc.flag+":"):
				t.Fatalf("error %q does not start with %q", err, tc.flag+":")
			}
		})
	}
}
