package ledger_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
)

// TestUsage_LargeBatchCopy: a batch of CopyRowsMin events or more, whose
// usage rows and entries persist writes with COPY, stores exactly what
// batches small enough for the INSERTs store: the results, the usage rows and
// the entries, every nullable column included (metadata's SQL NULL told
// apart from JSON null). A replay of it writes nothing, and the
// ledger verifies.
func TestUsage_LargeBatchCopy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n, smallBatch = 1000, 50
	small := f.org("small", &orgOpts{policy: ledger.PolicyReject})
	large := f.org("large", &orgOpts{policy: ledger.PolicyReject})
	soon := t0.Add(40 * 24 * time.Hour)
	for _, org := range []string{small, large} {
		// Two lots, so that some events draw on both and post two entries.
		f.grant(org, "1000", "promo", "first", &soon)
		f.grant(org, "1800", "purchase", "second", nil)
	}
	events := func(org string) []ledger.UsageEvent {
		evs := make([]ledger.UsageEvent, n)
		for i := range evs {
			ev := ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("e%04d", i), OccurredAt: t0.Add(10 * time.Minute),
				TaskID: fmt.Sprintf("task-%d", i/7)}
			switch i % 5 {
			case 0:
				ev.Amount = crp("1.5") // with a team and a user
				ev.Team, ev.User = "core", "ann"
			case 1:
				ev.Feature, ev.Units = "microservice", 2 // priced by the catalog
			case 2:
				ev.Runs = 3 // within the included runs: costs nothing
			case 3:
				ev.Amount = crp("0.25")
				ev.Metadata = json.RawMessage(fmt.Sprintf(`{"model":"m%d","tokens":%d}`, i%3, i))
			case 4:
				ev.Amount = crp("9") // rejected once the balance runs short
				ev.Feature = "custom_query"
			}
			evs[i] = ev
		}
		return evs
	}
	// The rows both paths must agree on; ids, the org and the instant of the
	// transaction differ by construction.
	usageRows := func(org string) []string {
		t.Helper()
		return f.jsonRows(`
SELECT row_number() OVER (ORDER BY event_id) AS n, event_id, status, reason, feature, units, runs, overage_runs,
       amount, team, user_id, occurred_at, cycle_start, metadata, metadata IS NULL AS sql_null, debt, balance_after,
       request_hash
FROM usage_events WHERE org_id = $1`, org)
	}
	entryRows := func(org string) []string {
		t.Helper()
		return f.jsonRows(`
SELECT row_number() OVER (ORDER BY e.entry_id) AS n, e.kind, e.amount, e.balance_after, l.key AS lot, e.lot_delta,
       e.hold_id, e.held_delta, e.debt_delta, e.key, e.event_id, e.team, e.user_id, e.feature, e.task_id,
       e.payment_id, e.carried
FROM entries e LEFT JOIN lots l ON l.org_id = e.org_id AND l.lot_id = e.lot_id
WHERE e.org_id = $1`, org)
	}

	evs := events(small)
	var smallRes []ledger.UsageResult
	for i := 0; i < n; i += smallBatch {
		smallRes = append(smallRes, f.record(evs[i:i+smallBatch])...)
	}
	before := len(entryRows(large))
	// An instant finer than a microsecond, which both write paths truncate.
	instant := t0.Add(2*time.Hour + 123456789*time.Nanosecond)
	f.clock.Set(instant)
	largeRes := f.record(events(large))
	largeEntries := entryRows(large)
	if wrote := len(largeEntries) - before; wrote < ledger.CopyRowsMin {
		t.Fatalf("the large batch wrote %d entries, fewer than the %d that take the COPY path", wrote, ledger.CopyRowsMin)
	}

	rejected := 0
	for i := range largeRes {
		s, l := smallRes[i], largeRes[i]
		s.OrgID, l.OrgID = "", ""
		if s != l {
			t.Fatalf("event %d: %+v in small batches, %+v in one", i, smallRes[i], largeRes[i])
		}
		if l.Status == ledger.UsageRejected {
			rejected++
		}
	}
	if rejected == 0 || rejected == n {
		t.Fatalf("%d of %d events rejected; the test wants some of both", rejected, n)
	}
	perEvent := map[string]int{}
	for _, r := range largeEntries {
		var e struct {
			EventID *string `json:"event_id"`
		}
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			t.Fatal(err)
		}
		if e.EventID != nil {
			perEvent[*e.EventID]++
		}
	}
	if !slices.Contains(slices.Collect(maps.Values(perEvent)), 2) {
		t.Fatal("no event drew on both lots; the test wants one that posts two entries")
	}
	for name, pair := range map[string][2][]string{
		"usage_events": {usageRows(small), usageRows(large)},
		"entries":      {entryRows(small), largeEntries},
	} {
		s, l := pair[0], pair[1]
		if len(s) != len(l) {
			t.Fatalf("%s: %d rows from small batches, %d from one", name, len(s), len(l))
		}
		for i := range l {
			if s[i] != l[i] {
				t.Fatalf("%s row %d differs:\n small batches %s\n one batch     %s", name, i, s[i], l[i])
			}
		}
	}

	var offInstant int
	if err := f.pool.QueryRow(f.ctx, `
SELECT (SELECT count(*) FROM usage_events WHERE org_id = $1 AND recorded_at <> $2) +
       (SELECT count(*) FROM entries WHERE org_id = $1 AND kind = 'usage' AND at <> $2)`,
		large, instant.Truncate(time.Microsecond)).Scan(&offInstant); err != nil {
		t.Fatal(err)
	}
	if offInstant > 0 {
		t.Fatalf("%d usage rows and entries of the large batch are not stamped %v", offInstant, instant)
	}

	// Replaying the large batch returns the first results and writes nothing.
	for i, r := range f.record(events(large)) {
		if !r.Replayed || r.Status != largeRes[i].Status || r.BalanceAfter != largeRes[i].BalanceAfter {
			t.Fatalf("replay of event %d: %+v, first %+v", i, r, largeRes[i])
		}
	}
	if got := len(entryRows(large)); got != len(largeEntries) {
		t.Fatalf("the replay wrote %d entries", got-len(largeEntries))
	}
	f.verify()
}

// jsonRows runs a query of one org's rows, which numbers them in a column n,
// and returns each row as JSON text in that order.
func (f *fixture) jsonRows(query, org string) []string {
	f.t.Helper()
	rows, err := f.pool.Query(f.ctx, `SELECT row_to_json(x)::text FROM (`+query+`) x ORDER BY x.n`, org)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// TestUsage_LargeBatchAllRejected: a batch large enough for COPY whose
// events are all rejected writes nothing but its usage rows, and writes
// them: a replay, even after the org has credits, returns the rejection and
// charges nothing.
func TestUsage_LargeBatchAllRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("broke", &orgOpts{policy: ledger.PolicyReject})
	evs := make([]ledger.UsageEvent, ledger.CopyRowsMin)
	for i := range evs {
		evs[i] = ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("e%04d", i), Amount: crp("1")}
	}
	for i, r := range f.record(evs) {
		if r.Status != ledger.UsageRejected || r.Reason != ledger.ReasonInsufficientCredits || r.Replayed {
			t.Fatalf("event %d: %+v", i, r)
		}
	}
	if rows := f.count(`SELECT count(*) FROM usage_events WHERE org_id = $1 AND status = 'rejected'`, org); rows != len(evs) {
		t.Fatalf("%d rejected usage rows stored, want %d", rows, len(evs))
	}
	f.grant(org, "10000", "purchase", "later", nil)
	for i, r := range f.record(evs) {
		if r.Status != ledger.UsageRejected || !r.Replayed {
			t.Fatalf("replay of event %d after the grant: %+v", i, r)
		}
	}
	f.wantAvailable(org, "10000")
	f.verify()
}

// TestUsage_ReplayAfterRateChange: a redelivered feature event replays its
// first result even when the catalog's rate has since risen so far that
// pricing the event now would be refused.
func TestUsage_ReplayAfterRateChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "100000", "purchase", "seed", nil)
	ev := ledger.UsageEvent{OrgID: org, EventID: "e1", Feature: "microservice", Units: 1000}
	first := f.record([]ledger.UsageEvent{ev})[0]

	dear := config.DefaultCatalog()
	dear.Features = maps.Clone(dear.Features)
	dear.Features["microservice"] = cr("2000000000") // 1,000 units: twice the largest amount
	l := ledger.New(dear, f.clock)
	var again []ledger.UsageResult
	f.tx(func(tx pgx.Tx) (err error) {
		again, err = l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{ev})
		return err
	})
	if !again[0].Replayed || again[0].Cost != first.Cost || again[0].BalanceAfter != first.BalanceAfter {
		t.Fatalf("replay %+v, first %+v", again[0], first)
	}
	if _, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "e2", Feature: "microservice", Units: 1000}); err != nil {
		t.Fatalf("a new event at the old rate: %v", err)
	}
	var other []ledger.UsageResult
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		other, err = l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: org, EventID: "e3", Feature: "microservice", Units: 1000}})
		return err
	})
	var v *ledger.ValidationError
	if !errors.As(err, &v) || v.Field != "units" {
		t.Fatalf("a new event at the new rate: %+v %v, want a refusal naming units", other, err)
	}
	f.verify()
}
