package ledger_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
)

// TestUsage_LargeBatchCopy: a batch of 500 or more events, whose entries
// persist writes with COPY, stores exactly what batches small enough for the
// INSERT store (results, usage rows with every nullable column, entries), a
// replay of it changes nothing, and the ledger verifies.
func TestUsage_LargeBatchCopy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 600
	small := f.org("small", &orgOpts{policy: ledger.PolicyReject})
	large := f.org("large", &orgOpts{policy: ledger.PolicyReject})
	for _, org := range []string{small, large} {
		f.grant(org, "1500", "purchase", "seed", nil)
	}
	events := func(org string) []ledger.UsageEvent {
		evs := make([]ledger.UsageEvent, n)
		for i := range evs {
			ev := ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("e%04d", i), OccurredAt: t0.Add(10 * time.Minute)}
			switch i % 5 {
			case 0:
				ev.Amount = crp("1.5") // with a team and user
				ev.Team, ev.User = "core", "ann"
			case 1:
				ev.Feature, ev.Units = "microservice", 2 // priced by the catalog
			case 2:
				ev.Runs = 3
			case 3:
				ev.Amount = crp("0.25")
				ev.Metadata = json.RawMessage(fmt.Sprintf(`{"model":"m%d","tokens":%d}`, i%3, i))
			case 4:
				ev.Amount = crp("9") // rejected once the balance runs short
			}
			evs[i] = ev
		}
		return evs
	}
	record := func(evs []ledger.UsageEvent) []ledger.UsageResult {
		t.Helper()
		var res []ledger.UsageResult
		f.tx(func(tx pgx.Tx) (err error) {
			res, err = f.l.RecordUsage(f.ctx, tx, evs)
			return err
		})
		return res
	}
	var smallRes []ledger.UsageResult
	evs := events(small)
	for i := 0; i < n; i += 50 {
		smallRes = append(smallRes, record(evs[i:i+50])...)
	}
	largeRes := record(events(large))

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
	rows := func(org string) []string {
		t.Helper()
		r, err := f.pool.Query(f.ctx, `
SELECT row_to_json(x)::text FROM (
    SELECT event_id, status, reason, feature, units, runs, overage_runs, amount, team, user_id, occurred_at,
           cycle_start, metadata, debt, balance_after, request_hash
    FROM usage_events WHERE org_id = $1 ORDER BY event_id) x`, org)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	smallRows, largeRows := rows(small), rows(large)
	if len(largeRows) != n || len(smallRows) != n {
		t.Fatalf("%d and %d usage rows, want %d each", len(smallRows), len(largeRows), n)
	}
	for i := range largeRows {
		if smallRows[i] != largeRows[i] {
			t.Fatalf("row %d differs:\n small batches %s\n one batch     %s", i, smallRows[i], largeRows[i])
		}
	}
	if s, l := len(f.history(small)), len(f.history(large)); s != l {
		t.Fatalf("%d entries from small batches, %d from one", s, l)
	}
	// Replaying the large batch changes nothing and returns the same results.
	for i, r := range record(events(large)) {
		if !r.Replayed || r.Status != largeRes[i].Status || r.BalanceAfter != largeRes[i].BalanceAfter {
			t.Fatalf("replay of event %d: %+v, first %+v", i, r, largeRes[i])
		}
	}
	f.verify()
}
