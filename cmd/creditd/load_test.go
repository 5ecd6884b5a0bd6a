package main

import (
	"context"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/creditd/creditd/config"
)

// redisDBLoad is the Redis database of the load case.
const redisDBLoad = 10

// testLoad runs `creditd load` against a `creditd worker`, one event per
// task and in batches: every event must be applied exactly once, the ledger
// must verify, and the no-op baseline's queue must be gone afterwards. No
// timing is asserted: the figures depend on the machine.
func testLoad(t *testing.T, c *cli) {
	c.startWorker(redisDBLoad)
	const events, orgs = 2000, 20
	// Cycles mode first, while its orgs are the only ones due: a month
	// boundary for 300 orgs through the sweeps.
	var cyc cyclesLoadSummary
	c.json(0, &cyc, "load", "--mode", "cycles", "--orgs", "300", "--org-prefix", "lt-cycles", "--json", "--timeout", "50s")
	// Professional: last month's 5,000 roll over, this month's 5,000 are granted.
	if cyc.Orgs != 300 || cyc.Cycle.Cycles != 300 || cyc.Cycle.Granted.String() != "1500000.000" ||
		cyc.Cycle.Carried.String() != "1500000.000" || len(cyc.Cycle.Failed) != 0 || cyc.OrgsPerSecond <= 0 {
		t.Errorf("cycles: summary %+v, want 300 orgs each granted and carrying 5,000", cyc)
	}
	for _, tc := range []struct {
		prefix string
		args   []string
	}{
		{"lt-single", []string{"--mode", "single", "--noop-baseline"}},
		{"lt-batch", []string{"--mode", "batch", "--batch-size", "300"}},
		{"lt-spread", []string{"--mode", "batch", "--batch-size", "300", "--group", "spread", "--rate", "20000"}},
	} {
		var sum loadSummary
		args := append([]string{"load", "--events", "2000", "--orgs", "20", "--org-prefix", tc.prefix, "--json", "--timeout", "50s"}, tc.args...)
		c.json(0, &sum, args...)
		wantTasks := events
		if tc.prefix != "lt-single" {
			wantTasks = (events + 299) / 300
		}
		if sum.Events != events || sum.Orgs != orgs || sum.Applied != events || sum.Rejected != 0 || sum.Tasks != wantTasks || sum.OrgPrefix != tc.prefix {
			t.Errorf("%s: summary %+v, want %d events over %d orgs in %d tasks, all applied", tc.prefix, sum, events, orgs, wantTasks)
		}
		if sum.EventsPerSecond <= 0 || sum.LatencyMS.Max < sum.LatencyMS.P99 || sum.LatencyMS.P99 < sum.LatencyMS.P50 {
			t.Errorf("%s: implausible figures %+v", tc.prefix, sum)
		}
		if (sum.Noop != nil) != (tc.prefix == "lt-single") || (sum.Noop != nil && (sum.Noop.Tasks != events || sum.VsNoopPercent == nil)) {
			t.Errorf("%s: no-op baseline %+v", tc.prefix, sum.Noop)
		}

		// Exactly once: one usage event and one usage entry per event id,
		// on the org the run gave it.
		var rows, distinct, entries, orgCount int
		c.queryRow(`SELECT count(*), count(DISTINCT event_id) FROM usage_events WHERE org_id LIKE $1 || '-%'`,
			[]any{tc.prefix}, &rows, &distinct)
		c.queryRow(`SELECT count(*) FROM entries WHERE kind = 'usage' AND org_id LIKE $1 || '-%'`, []any{tc.prefix}, &entries)
		c.queryRow(`SELECT count(*) FROM orgs WHERE org_id LIKE $1 || '-%'`, []any{tc.prefix}, &orgCount)
		if rows != events || distinct != events || entries != events || orgCount != orgs {
			t.Errorf("%s: %d usage events (%d distinct ids), %d usage entries, %d orgs; want %d, %d, %d, %d",
				tc.prefix, rows, distinct, entries, orgCount, events, events, events, orgs)
		}
	}
	c.ok("verify")

	insp := asynq.NewInspector(c.redisOpt())
	defer insp.Close()
	queues, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if strings.HasPrefix(q, "load-noop-") {
			t.Errorf("the no-op baseline's queue %s was left behind", q)
		}
	}

	// Bad input is refused before anything is enqueued.
	for _, bad := range [][]string{
		{"load", "--events", "0"},
		{"load", "--events", "10", "--orgs", "20"},
		{"load", "--mode", "bulk"},
		{"load", "--mode", "single", "--batch-size", "10"},
		{"load", "--mode", "batch", "--batch-size", "1001"},
		{"load", "--org-prefix", "bad prefix"},
		{"load", "--events", "1000", "--orgs", "1", "--grant", "0.5"},
		{"load", "--rate", "-1"},
		{"load", "--events", "2000", "--orgs", "20", "--org-prefix", "lt-single"}, // taken by the run above
	} {
		if r := c.run(bad...); r.code != 2 {
			t.Errorf("creditd %s: exit %d, want 2\nstderr: %s", strings.Join(bad, " "), r.code, r.stderr)
		}
	}
}

// queryRow runs a query on the case's database and scans its one row.
func (c *cli) queryRow(sql string, args []any, dest ...any) {
	c.t.Helper()
	if err := c.conn().QueryRow(context.Background(), sql, args...).Scan(dest...); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
}

// redisOpt is the Redis the case's worker uses (REDIS_URL of its environment).
func (c *cli) redisOpt() asynq.RedisConnOpt {
	c.t.Helper()
	for _, kv := range c.env {
		if u, ok := strings.CutPrefix(kv, config.EnvRedisURL+"="); ok {
			opt, err := asynq.ParseRedisURI(u)
			if err != nil {
				c.t.Fatal(err)
			}
			return opt
		}
	}
	c.t.Fatal("no REDIS_URL: start the worker first")
	return nil
}
