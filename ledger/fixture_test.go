package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

// t0 is the start of a cycle for orgs anchored at the default (1st, UTC).
var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

type fixture struct {
	t     *testing.T
	url   string
	ctx   context.Context
	pool  *pgxpool.Pool
	clock *ledgertest.Clock
	l     *ledger.Ledger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := ledgertest.NewClock(t0.Add(time.Hour))
	url := ledgertest.NewURL(t)
	return &fixture{t: t, url: url, ctx: context.Background(), pool: ledgertest.Pool(t, url), clock: clock,
		l: ledger.New(config.DefaultCatalog(), clock)}
}

// poolURL is the URL of the test's database, for other processes.
func (f *fixture) poolURL() string {
	return f.url
}

func cr(s string) credits.Credits { return credits.MustParse(s) }

func crp(s string) *credits.Credits { c := cr(s); return &c }

// orgOpts are the optional settings of a test org.
type orgOpts struct {
	plan   string
	policy ledger.Policy
	cap    *credits.Credits
}

func (f *fixture) org(id string, o *orgOpts) string {
	f.t.Helper()
	req := ledger.NewOrg{ID: id, Plan: "standard", Anchor: &t0}
	if o != nil {
		if o.plan != "" {
			req.Plan = o.plan
		}
		req.Policy, req.MonthlyCap = o.policy, o.cap
	}
	f.tx(func(tx pgx.Tx) error { _, err := f.l.CreateOrg(f.ctx, tx, req); return err })
	return id
}

// tx runs fn in a committed transaction and fails the test on error.
func (f *fixture) tx(fn func(tx pgx.Tx) error) {
	f.t.Helper()
	if err := ledger.WithTx(f.ctx, f.pool, fn); err != nil {
		f.t.Fatalf("tx: %v", err)
	}
}

// record applies events in one committed transaction and returns their
// results.
func (f *fixture) record(evs []ledger.UsageEvent) []ledger.UsageResult {
	f.t.Helper()
	var res []ledger.UsageResult
	f.tx(func(tx pgx.Tx) (err error) {
		res, err = f.l.RecordUsage(f.ctx, tx, evs)
		return err
	})
	return res
}

// lockOrg holds org's balance row lock in a transaction of its own until
// that is committed or rolled back, or the test ends.
func (f *fixture) lockOrg(org string) pgx.Tx {
	f.t.Helper()
	tx, err := f.pool.Begin(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = tx.Rollback(context.Background()) }) // after Commit or Rollback a no-op
	if _, err := tx.Exec(f.ctx, `SELECT 1 FROM balances WHERE org_id = $1 FOR UPDATE`, org); err != nil {
		f.t.Fatal(err)
	}
	return tx
}

// waitForLockWaiters waits until at least n sessions of the test's database
// wait for a lock.
func (f *fixture) waitForLockWaiters(n int) {
	f.t.Helper()
	waitFor(f.t, func() bool {
		var waiting int
		if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			f.t.Fatal(err)
		}
		return waiting >= n
	})
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// count runs a query that returns one number (a count) and returns it.
func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, query, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) grant(org, amount, source, key string, expires *time.Time) ledger.GrantResult {
	f.t.Helper()
	var res ledger.GrantResult
	f.tx(func(tx pgx.Tx) (err error) {
		res, err = f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: cr(amount), Source: source, Key: key, ExpiresAt: expires})
		return err
	})
	return res
}

func (f *fixture) useE(ev ledger.UsageEvent) (ledger.UsageResult, error) {
	var res []ledger.UsageResult
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		res, err = f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{ev})
		return err
	})
	if err != nil {
		return ledger.UsageResult{}, err
	}
	return res[0], nil
}

func (f *fixture) use(org, event, amount string) ledger.UsageResult {
	f.t.Helper()
	res, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: event, Amount: crp(amount)})
	if err != nil {
		f.t.Fatalf("usage %s: %v", event, err)
	}
	return res
}

func (f *fixture) balance(org string) ledger.Balance {
	f.t.Helper()
	b, err := f.l.Balance(f.ctx, f.pool, org)
	if err != nil {
		f.t.Fatalf("balance: %v", err)
	}
	return b
}

func (f *fixture) wantAvailable(org, want string) {
	f.t.Helper()
	if got := f.balance(org).Available; got != cr(want) {
		f.t.Fatalf("available = %s, want %s", got, want)
	}
}

func (f *fixture) verify() {
	f.t.Helper()
	rep, err := f.l.Verify(f.ctx, f.pool)
	if err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	if !rep.OK {
		f.t.Fatalf("verify found violations: %+v", rep.Violations)
	}
}

func (f *fixture) history(org string) []ledger.Entry {
	f.t.Helper()
	h, err := f.l.History(f.ctx, f.pool, org, 0, 0)
	if err != nil {
		f.t.Fatalf("history: %v", err)
	}
	return h
}
