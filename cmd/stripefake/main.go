// Command stripefake runs jobs/payments/stripefake, creditd's fake of the
// Stripe API, as a process of its own: for trying auto-recharge on a
// running daemon (README "Payments: reconciliation, conformance and a
// walkthrough") without a Stripe account, with STRIPE_API_BASE pointing at
// it. It is test support, not a Stripe: it keeps everything in memory and
// accepts any sk_test_ key.
//
// At start it creates one customer with a card per --card test token
// (tok_visa succeeds, tok_chargeDeclinedInsufficientFunds declines; see the
// stripefake package for all of them) and prints, once it is listening,
// shell lines to source:
//
//	export STRIPE_API_BASE=http://127.0.0.1:12111
//	export FAKE_CUSTOMER=cus_...
//	export FAKE_CARD_1=pm_...   # tok_visa visa 4242
//
// Every request is logged on stderr as one JSON line (method, path, status,
// idempotency key, replayed). It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintf(os.Stderr, "stripefake: %v\n", err)
		stop()
		os.Exit(2)
	}
}

// cards is the repeatable --card flag.
type cards []string

func (c *cards) String() string     { return strings.Join(*c, ",") }
func (c *cards) Set(v string) error { *c = append(*c, v); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stripefake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:12111", "listen address (port 0 picks a free one)")
	var tokens cards
	fs.Var(&tokens, "card", "a test token whose card the customer gets (repeatable; default tok_visa)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(tokens) == 0 {
		tokens = cards{"tok_visa"}
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	s, err := stripefake.Listen(*addr, func(format string, args ...any) { log.Error(fmt.Sprintf(format, args...)) })
	if err != nil {
		return err
	}
	defer s.Close()
	cus, pms, err := s.CreateCustomer(tokens...)
	if err != nil {
		return fmt.Errorf("card: %w", err)
	}
	fmt.Fprintf(stdout, "export STRIPE_API_BASE=%s\nexport FAKE_CUSTOMER=%s\n", s.URL, cus)
	for i, pm := range pms {
		fmt.Fprintf(stdout, "export FAKE_CARD_%d=%s   # %s\n", i+1, pm, tokens[i])
	}
	log.Info("stripefake listening", "url", s.URL, "customer", cus)
	logRequests(ctx, s, log)
	return nil
}

// logRequests logs each request the fake served until ctx ends.
func logRequests(ctx context.Context, s *stripefake.Server, log *slog.Logger) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	logged := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		reqs := s.Requests()
		for _, r := range reqs[logged:] {
			log.Info("request", "method", r.Method, "path", r.Path, "status", r.Status, "idempotency_key", r.IdempotencyKey,
				"replayed", r.Replayed, "fault", r.Fault.String())
		}
		logged = len(reqs)
	}
}
