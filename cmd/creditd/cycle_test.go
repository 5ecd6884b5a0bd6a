package main

import (
	"strings"
	"testing"
	"time"
)

// redisDBCycle is the Redis database of the cycle case.
const redisDBCycle = 5

// testCycle catches up the cycles of orgs anchored at the start of the month
// before last, through `creditd cycle` as of now: a dry run first (which
// changes nothing), then the real run through a worker, then a second run
// that finds nothing to do. (The ledger expires lots by its own clock, so the
// test works with the present, not a fixed date.)
func testCycle(t *testing.T, c *cli) {
	c.startWorker(redisDBCycle)
	now := time.Now().UTC()
	anchor := time.Date(now.Year(), now.Month()-2, 1, 0, 0, 0, 0, time.UTC)
	current := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	c.ok("org", "create", "old", "--plan", "free", "--anchor", anchor.Format(time.RFC3339))
	c.ok("org", "create", "pro", "--plan", "professional", "--anchor", anchor.Format(time.RFC3339))
	at := now.Format(time.RFC3339)

	before := c.rowCounts()
	var preview struct {
		DryRun bool `json:"dry_run"`
		Orgs   []struct {
			Org    string `json:"org"`
			Cycles []struct {
				Start   string `json:"start"`
				Granted string `json:"granted"`
			} `json:"cycles"`
			Expired string `json:"expired"`
		} `json:"orgs"`
	}
	c.json(0, &preview, "cycle", "--at", at, "--dry-run", "--json")
	if after := c.rowCounts(); after != before {
		t.Fatalf("the dry run wrote: %s -> %s", before, after)
	}
	if !preview.DryRun || len(preview.Orgs) != 2 || preview.Orgs[0].Org != "old" || len(preview.Orgs[0].Cycles) != 3 ||
		preview.Orgs[0].Cycles[2].Start != current || preview.Orgs[0].Cycles[2].Granted != "100.000" ||
		preview.Orgs[0].Expired != "200.000" {
		t.Fatalf("dry run = %+v, want old's three cycles of 100 (the last from %s), 200 expired", preview, current)
	}
	if out := c.ok("cycle", "--at", at, "--dry-run"); !strings.Contains(out, "old: cycle "+anchor.Format(time.RFC3339)+" (free): grant 100.000") {
		t.Errorf("human dry run = %q", out)
	}

	var sum struct {
		Cycles  int    `json:"cycles"`
		Granted string `json:"granted"`
		Expired string `json:"expired"`
		Failed  []any  `json:"failed"`
	}
	c.json(0, &sum, "cycle", "--at", at, "--json")
	// old: 3 x 100 granted, the first two expired; pro: 3 x 5,000, rolled over.
	if sum.Cycles != 6 || sum.Granted != "15300.000" || sum.Expired != "200.000" || len(sum.Failed) != 0 {
		t.Fatalf("cycle = %+v, want 6 cycles, 15300 granted, 200 expired", sum)
	}
	if got := c.balanceWithoutAt("old"); !strings.Contains(got, `"available":"100.000"`) {
		t.Fatalf("old balance = %s, want 100 available", got)
	}
	if got := c.balanceWithoutAt("pro"); !strings.Contains(got, `"available":"15000.000"`) {
		t.Fatalf("pro balance = %s, want 15000 available", got)
	}
	// The same instant again names the same sweeps: their first report.
	first := sum
	c.json(0, &sum, "cycle", "--at", at, "--json")
	if sum.Cycles != first.Cycles || sum.Granted != first.Granted {
		t.Fatalf("run repeated at the same instant = %+v, want the first report %+v", sum, first)
	}
	// A later instant sweeps again and finds nothing left to do.
	c.json(0, &sum, "cycle", "--at", now.Add(time.Second).Format(time.RFC3339Nano), "--json")
	if sum.Cycles != 0 || sum.Granted != "0.000" {
		t.Fatalf("second run = %+v, want nothing to do", sum)
	}
	// Enterprise terms per org, and a plan change from the next cycle on.
	c.ok("org", "create", "ent", "--plan", "enterprise", "--anchor", current, "--monthly-credits", "250",
		"--rollover-months", "1", "--rollover-cap", "100")
	c.json(0, &sum, "cycle", "--at", now.Add(2*time.Second).Format(time.RFC3339Nano), "--json")
	if sum.Cycles != 1 || sum.Granted != "250.000" {
		t.Fatalf("enterprise org's first cycle = %+v, want 250 granted", sum)
	}
	if out := c.ok("org", "set", "old", "--plan", "standard"); !strings.Contains(out, "takes effect at its next cycle") {
		t.Fatalf("org set printed %q", out)
	}
	next := time.Date(now.Year(), now.Month()+1, 1, 1, 0, 0, 0, time.UTC).Format(time.RFC3339)
	if out := c.ok("cycle", "--at", next, "--dry-run"); !strings.Contains(out, "(standard): grant 1000.000") ||
		!strings.Contains(out, "ent: cycle") || !strings.Contains(out, "(enterprise): grant 250.000") {
		t.Fatalf("dry run of next month = %q, want old on standard (1000) and ent's 250", out)
	}
	if r := c.run("org", "set", "old"); r.code != 2 || !strings.Contains(r.stderr, "nothing to change") {
		t.Fatalf("org set without a change: exit %d, %s", r.code, r.stderr)
	}
	if r := c.run("org", "set", "old", "--rollover-months", "1.5"); r.code != 2 || !strings.Contains(r.stderr, "rollover_months") {
		t.Fatalf("org set with a fractional rollover: exit %d, %s", r.code, r.stderr)
	}
	if r := c.run("cycle", "--at", "2099-01-01T00:00:00Z"); r.code != 2 || !strings.Contains(r.stderr, "at:") {
		t.Fatalf("cycle in the future: exit %d, %s; want 2 naming at", r.code, r.stderr)
	}
	c.json(0, &struct{}{}, "verify", "--json")
}
