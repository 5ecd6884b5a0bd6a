// Command creditd is the prepaid-credit billing daemon's binary. This is its
// operator CLI: create and upgrade the schema, create orgs, grant credits,
// record usage, read balances and history, set team limits, restore credits
// and verify the ledger, all against the Postgres ledger named by
// DATABASE_URL. It is thin on purpose: it parses flags and calls package
// ledger, which validates every request before it writes anything.
//
// Flags may come before or after positional arguments. Amounts are decimal
// credit strings ("12.5"), times are RFC 3339. --json prints exactly one JSON
// document on stdout. Errors go to stderr as "creditd: <field>: <reason>".
//
// Exit status: 0 on success (a usage event recorded as rejected is a
// success); 1 when the command failed (not found, conflict, database or
// configuration errors, ledger violations found by verify); 2 for bad input
// (unknown command or flag, missing argument, a value that does not parse or
// that the ledger refuses).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
)

// maxConns bounds the CLI's database connections: it runs one command.
const maxConns = 4

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// app is what a command runs with. The pool and ledger are opened by connect,
// after the command has parsed and checked its arguments.
type app struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	log    *slog.Logger

	pool   *pgxpool.Pool
	ledger *ledger.Ledger
}

// command is one CLI command. name may be two words ("org create").
type command struct {
	name string
	args string // the synopsis after the name
	help string
	run  func(a *app, c *command, args []string) error
}

func commands() []*command {
	return []*command{
		{"migrate", "", "Create or upgrade the schema (idempotent); orgs older than alerts get the catalog's default alert rules once.", runMigrate},
		{"org create", "ORG --plan PLAN [--anchor TIME] [--tz ZONE] [--policy debt|reject] [--email ADDR]... [--currency CUR] [--monthly-cap AMOUNT]\n" +
			"    [--monthly-credits A] [--rollover-months M] [--rollover-cap A] [--included-runs N] [--json]",
			"Create an org with a zero balance. Creating it again with the same settings changes nothing.", runOrgCreate},
		{"org set", "ORG [--plan PLAN] [--anchor TIME] [--tz ZONE] [--monthly-credits A] [--rollover-months M] [--rollover-cap A] [--included-runs N] [--clear-overrides]\n" +
			"    [--auto-pay on|off] [--price MONEY|plan] [--json]",
			"Change an org's plan, per-org terms or billing anchor from its next cycle on; the current cycle keeps its terms.\n" +
				"--auto-pay and --price change how its invoices are billed, from the next invoice on.", runOrgSet},
		{"org show", "ORG [--json]", "Print an org's settings and current balance.", runOrgShow},
		{"invoice", "ORG --period YYYY-MM [--json|--csv|--html]",
			"Print the org's invoice of a month (in its time zone); a month that has ended and has no invoice yet is invoiced first.", runInvoice},
		{"invoices", "ORG [--json]", "List the org's invoices, newest first.", runInvoices},
		{"org emails", "ORG [--email ADDR]...", "Set the addresses the org's alerts are emailed to, at once; none clears the list.", runOrgEmails},
		{"grant", "ORG AMOUNT --source purchase|promo|adjustment --key KEY [--expires TIME] [--json]",
			"Add credits in a new lot; debt is repaid first. The key makes it happen once.", runGrant},
		{"usage", "ORG (AMOUNT | --feature F [--units N] | --runs N) --event ID [--team T] [--user U] [--wait [--timeout D]] [--json]",
			"Enqueue a usage event for the workers (needs REDIS_URL). With --wait, wait until a worker has applied it and print\n" +
				"the result. Replaying an event id changes nothing. A rejected event (policy, limit or cap) is recorded, printed\n" +
				"with its reason, and exits 0; an event the worker refuses (an event id reused with other content) exits 1.", runUsage},
		{"balance", "ORG [--at TIME] [--json]", "Print an org's balance and lots, now or as of TIME.", runBalance},
		{"history", "ORG [--json]", "Print every entry of an org, oldest first.", runHistory},
		{"cycle", "[--at TIME] [--dry-run] [--timeout D] [--json]",
			"Run all cycle work due as of TIME (default now) through the queue and wait for it: expiry, rollover,\n" +
				"allocation, elapsed holds. Needs running workers and REDIS_URL. --dry-run prints per org what would be\n" +
				"granted, expired and rolled over (also for a future TIME) and changes nothing.", runCycle},
		{"report", "ORG --from TIME --to TIME --by team|user|feature [--json|--csv]",
			"Print the org's usage in [from, to) by team, user or feature: events applied and rejected, credits, units, runs and\n" +
				"overage runs, and totals. An event is in the range when the ledger applied it (recorded_at), as on invoices and in\n" +
				"history, whatever its occurred_at. TIME is RFC 3339 or a date YYYY-MM-DD, midnight in the org's time zone; at most\n" +
				"400 days. Usage naming no team, user or feature is the group (none).", runReport},
		{"reconcile", "[--since DURATION] [--timeout D] [--json]",
			"Compare the PaymentIntents Stripe made in the last --since (default 72h) with the ledger through the queue, and wait:\n" +
				"a success the ledger lacks is credited once; other disagreements are reported. Never charges. Exit 1 on any\n" +
				"mismatch or customer not checked. Needs running workers and REDIS_URL.", runReconcile},
		{"verify", "[--json]", "Check every ledger invariant for every org; exit 1 on any violation.", runVerify},
		{"limit set", "ORG (--team T | --user U) AMOUNT", "Give a team or user of an org a monthly credit limit.", runLimitSet},
		{"limit remove", "ORG (--team T | --user U)", "Remove a team's or user's monthly credit limit.", runLimitRemove},
		{"alert add", "ORG (--below AMOUNT | --below-percent P | --usage-percent P | --runway-days D | --depleted) [--team T] [--json]",
			"Add an alert rule; it fires once per crossing and re-arms when the balance rises back above it or the cycle turns.\n" +
				"A rule that already holds fires at once. Orgs start with the catalog's rules (below 20% and 5%, depleted, usage 50/75/90%).", runAlertAdd},
		{"alert list", "ORG [--json]", "List an org's alert rules and whom each has fired for.", runAlertList},
		{"alert remove", "ORG ID", "Remove an alert rule.", runAlertRemove},
		{"webhook add", "ORG URL --secret SECRET [--json]",
			"Add a receiver of the org's alerts: JSON POSTs signed as Standard Webhooks (webhook-id, webhook-timestamp,\n" +
				"webhook-signature). https is required when CREDITD_WEBHOOK_REQUIRE_HTTPS=true; private and loopback\n" +
				"addresses are refused unless CREDITD_WEBHOOK_ALLOW_PRIVATE=true.", runWebhookAdd},
		{"webhook list", "ORG [--json]", "List the org's webhook receivers (without their secrets).", runWebhookList},
		{"webhook remove", "ORG ID", "Stop sending new alerts to a receiver.", runWebhookRemove},
		{"notifications", "ORG [--limit N] [--before ID] [--json]", "List the org's stored notifications, newest first, with each delivery's state.", runNotifications},
		{"payment-method set", "ORG --customer CUS_ID --payment-method PM_ID [--brand B] [--last4 NNNN] [--json]",
			"Save the org's default card for off-session charges (charges nothing; ends an auto-recharge pause).", runPaymentMethodSet},
		{"recharge set", "ORG --threshold AMOUNT (--amount AMOUNT | --target AMOUNT) [--monthly-cap MONEY] [--json] | ORG --off",
			"Turn auto-recharge on (needs a saved card) or off. Below the threshold a write opens one charge attempt (at most one\n" +
				"in flight per org); a failed charge pauses it until the card is updated or it is set again.", runRechargeSet},
		{"recharge show", "ORG [--json]", "Print the org's auto-recharge settings, its last error and its recent attempts.", runRechargeShow},
		{"restore", "ORG --event ID [--json]",
			"Give back the credits a usage event spent (within 7 days of it). Restoring twice changes nothing.", runRestore},
		{"worker", "[--usage-concurrency N] [--concurrency N] [--batch-max N] [--batch-wait DURATION] [--batch-flushers N] [--batch-merge-max N] [--shutdown-timeout DURATION] [--metrics-addr ADDR] [--log-level LEVEL]",
			"Serve the task queues until SIGTERM: usage (events, batches, holds) on an asynq server of its own, the others\n" +
				"(payments, alerts, sweeps, reports) on a second; in-flight tasks finish or go back to the queue.\n" +
				"Logs one JSON line per failed task on stderr; --metrics-addr serves Prometheus metrics at /metrics.\n" +
				"Needs DATABASE_URL and REDIS_URL.", runWorker},
		{"all", "[--usage-concurrency N] [--concurrency N] [--batch-max N] [--batch-wait DURATION] [--batch-flushers N] [--batch-merge-max N] [--shutdown-timeout DURATION]",
			"Run the worker, the web server (API, UI, health, metrics) and the scheduler in one process, for development.\n" +
				"Needs DATABASE_URL and REDIS_URL; CREDITD_API_TOKEN is the operator token, CREDITD_SCHEDULE the schedule.", runAll},
		{"scheduler", "", "Enqueue the cycle, expiry, hold and alert sweeps and the payment reconciliation on the schedule (CREDITD_SCHEDULE;\n" +
			"CREDITD_RECONCILE_WINDOW) until SIGTERM. Needs REDIS_URL.\n" +
			"Any number may run at once: each tick is enqueued once.", runScheduler},
		{"web", "[--shutdown-timeout DURATION]", "Serve the HTTP API (/v1), the operators' UI (/monitor/), /healthz, /readyz and /metrics on CREDITD_HTTP_ADDR until SIGTERM.\nNeeds DATABASE_URL and REDIS_URL; CREDITD_API_TOKEN is the operator token.", runWeb},
		{"token create", "ORG --role member|admin [--json]", "Make an org API token and print it once (only its hash is stored). Members record usage, hold credits and read; admins may also change billing.", runTokenCreate},
		{"load", "[--events N] [--orgs K] [--mode single|batch] [--batch-size B] [--rate R] [--producers P] [--noop-baseline] [--worker-pid PID] [--json]", loadHelp, runLoad},
		{"config check", "", "Validate the environment configuration and the catalog without starting anything.", runConfigCheck},
		{"help", "[COMMAND]", "Print usage, or a command's help.", runHelp},
	}
}

// run runs the command in args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{
		ctx: ctx, stdout: stdout, stderr: stderr, getenv: getenv,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	defer a.close()
	if len(args) == 0 {
		a.usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		a.usage(stdout)
		return 0
	}
	c, rest := lookup(args)
	if c == nil {
		if isGroup(args[0]) {
			fmt.Fprintf(stderr, "creditd: %s: missing or unknown subcommand\n\n", args[0])
		} else {
			fmt.Fprintf(stderr, "creditd: unknown command %q\n\n", args[0])
		}
		a.usage(stderr)
		return 2
	}
	return a.exit(c.run(a, c, rest))
}

// lookup finds the command named by the first one or two words of args.
func lookup(args []string) (*command, []string) {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

// isGroup reports whether word starts two-word commands, like "org".
func isGroup(word string) bool {
	for _, c := range commands() {
		if strings.HasPrefix(c.name, word+" ") {
			return true
		}
	}
	return false
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, "creditd is the prepaid-credit billing daemon; these are its operator commands.\n\nusage:\n")
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  creditd %-*s  %s", width, c.name, c.args), " "))
	}
	fmt.Fprint(w, "\nFlags may come before or after arguments. Amounts are decimal credits (12.5); times are RFC 3339.\n"+
		"Environment: DATABASE_URL (required), CREDITD_CATALOG (catalog file; the built-in catalog when unset).\n"+
		"Run 'creditd COMMAND -h' for a command's help.\n")
}

func runHelp(a *app, c *command, args []string) error {
	if len(args) == 0 {
		a.usage(a.stdout)
		return nil
	}
	sub, _ := lookup(args)
	if sub == nil || sub == c {
		return usageErrorf(c, "unknown command %q", strings.Join(args, " "))
	}
	return sub.run(a, sub, []string{"-h"})
}

// errHelp: the command printed its help; exit 0.
var errHelp = errors.New("help requested")

// usageError is a command called wrongly: an unknown flag, a missing or
// extra argument. Exit status 2.
type usageError struct {
	cmd *command
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(c *command, format string, args ...any) error {
	return &usageError{cmd: c, msg: fmt.Sprintf(format, args...)}
}

// invalid is bad input the CLI refuses itself, before it connects: a value
// that does not parse. It is the ledger's ValidationError, so every refusal
// of a field reads and exits the same.
func invalid(field, format string, args ...any) error {
	return &ledger.ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// exitStatus ends the command with a status and no message: the command has
// already printed what went wrong.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exit prints err, if any, and returns the exit status for it.
func (a *app) exit(err error) int {
	var (
		status exitStatus
		uerr   *usageError
		verr   *ledger.ValidationError
	)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &uerr):
		fmt.Fprintf(a.stderr, "creditd: %s\nusage: creditd %s\n", uerr.msg, strings.TrimSpace(uerr.cmd.name+" "+uerr.cmd.args))
		return 2
	case errors.As(err, &verr):
		// The ledger wraps it ("event 0: amount: ..."); the field is what matters.
		fmt.Fprintf(a.stderr, "creditd: %s\n", verr)
		return 2
	case a.ctx.Err() != nil:
		a.log.Warn("interrupted", "err", err)
		fmt.Fprintf(a.stderr, "creditd: interrupted: %v\n", err)
		return 1
	default:
		fmt.Fprintf(a.stderr, "creditd: %v\n", err)
		return 1
	}
}

// openPool connects to DATABASE_URL: the only setting the database commands
// need (config.FromEnv would also require REDIS_URL).
func (a *app) openPool() error {
	dsn := a.getenv(config.EnvDatabaseURL)
	if dsn == "" {
		return &config.EnvError{Var: config.EnvDatabaseURL, Reason: "required"}
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the URL, password included.
		return &config.EnvError{Var: config.EnvDatabaseURL, Reason: "not a valid postgres connection string"}
	}
	cfg.MaxConns = maxConns
	ledger.ConfigureSessions(cfg)
	pool, err := pgxpool.NewWithConfig(a.ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	a.pool = pool
	return nil
}

// connect opens the pool and a ledger pricing with the catalog of
// CREDITD_CATALOG (the built-in one when unset).
func (a *app) connect() error {
	catalog, err := config.LoadCatalog(a.getenv(config.EnvCatalog))
	if err != nil {
		return err
	}
	if err := a.openPool(); err != nil {
		return err
	}
	a.ledger = ledger.New(catalog, nil)
	return nil
}

func (a *app) close() {
	if a.pool != nil {
		a.pool.Close()
	}
}

// openOrg connects and reads the org: what a command on one org does first.
func (a *app) openOrg(orgID string) (ledger.Org, error) {
	if err := a.connect(); err != nil {
		return ledger.Org{}, err
	}
	return a.requireOrg(orgID)
}

// requireOrg reads the org, so that a command on an unknown org fails with
// "org ORG: not found" before it does anything else.
func (a *app) requireOrg(orgID string) (ledger.Org, error) {
	org, err := a.ledger.GetOrg(a.ctx, a.pool, orgID)
	if errors.Is(err, ledger.ErrNotFound) {
		// GetOrg's message also carries the driver's "no rows in result set".
		return ledger.Org{}, fmt.Errorf("org %s: %w", orgID, ledger.ErrNotFound)
	}
	return org, err
}

func runMigrate(a *app, c *command, args []string) error {
	if _, err := a.parse(c, newFlagSet(c), args); err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	if err := ledger.Migrate(a.ctx, a.pool); err != nil {
		return err
	}
	// Orgs older than alerts get the catalog's default rules, once.
	n, err := a.ledger.ApplyAlertDefaults(a.ctx, a.pool, 500)
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(a.stdout, "default alert rules given to %d orgs\n", n)
	}
	fmt.Fprintln(a.stdout, "schema up to date")
	return nil
}

// runConfigCheck validates what `creditd worker`, `scheduler` and `web` will
// need: the whole environment configuration and the catalog.
func runConfigCheck(a *app, c *command, args []string) error {
	if _, err := a.parse(c, newFlagSet(c), args); err != nil {
		return err
	}
	cfg, envErr := config.FromEnv(a.getenv)
	_, catErr := config.LoadCatalog(cfg.CatalogPath)
	if err := errors.Join(envErr, catErr); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(a.stderr, "creditd: %s\n", line)
		}
		return exitStatus(1)
	}
	fmt.Fprintln(a.stdout, "config ok")
	return nil
}
