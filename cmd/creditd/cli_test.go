package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// usageResult is the part of `usage --json` the tests read.
type usageResult struct {
	Org          string `json:"org"`
	EventID      string `json:"event_id"`
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	Cost         string `json:"cost"`
	OverageRuns  int64  `json:"overage_runs"`
	BalanceAfter string `json:"balance_after"`
	Replayed     bool   `json:"replayed"`
}

func testHappyPath(t *testing.T, c *cli) {
	c.startWorker(redisDBHappyPath)
	for range 2 { // migrate is idempotent
		if out := c.ok("migrate"); out != "schema up to date\n" {
			t.Fatalf("migrate printed %q", out)
		}
	}

	var org map[string]any
	c.json(0, &org, "org", "create", "acme", "--plan", "free", "--email", "a@example.com", "--email", "b@example.com", "--json")
	if org["org"] != "acme" || org["plan"] != "free" || org["policy"] != "debt" || org["time_zone"] != "UTC" {
		t.Fatalf("org create = %v", org)
	}
	if emails, _ := org["emails"].([]any); len(emails) != 2 {
		t.Fatalf("emails = %v", org["emails"])
	}
	c.ok("org", "create", "acme", "--plan", "free", "--email", "a@example.com", "--email", "b@example.com")

	var grant struct {
		BalanceAfter string `json:"balance_after"`
		Replayed     bool   `json:"replayed"`
	}
	c.json(0, &grant, "grant", "acme", "11", "--source", "purchase", "--key", "p1", "--json")
	if grant.BalanceAfter != "11.000" || grant.Replayed {
		t.Fatalf("grant = %+v", grant)
	}
	// Flags before the positionals; the same key grants once.
	c.json(0, &grant, "grant", "--source=purchase", "--key", "p1", "--json", "acme", "11")
	if grant.BalanceAfter != "11.000" || !grant.Replayed {
		t.Fatalf("replayed grant = %+v", grant)
	}

	// The free plan includes 1,000 runs; each run past them costs 0.01.
	for _, tc := range []struct {
		name        string
		args        []string
		cost        string
		overageRuns int64
		balance     string
	}{
		{"by amount", []string{"acme", "1", "--event", "e-amount"}, "1.000", 0, "10.000"},
		{"by feature", []string{"--feature", "microservice", "acme", "--units", "1", "--event", "e-feature"}, "2.000", 0, "8.000"},
		{"by runs", []string{"acme", "--runs", "1050", "--event", "e-runs", "--wait"}, "0.500", 50, "7.500"},
		{"by runs with a feature label", []string{"acme", "--runs", "50", "--feature", "custom_query", "--event", "e-runs-label"}, "0.500", 50, "7.000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r usageResult
			c.json(0, &r, append([]string{"usage", "--wait", "--json"}, tc.args...)...)
			if r.Status != "applied" || r.Cost != tc.cost || r.OverageRuns != tc.overageRuns || r.BalanceAfter != tc.balance || r.Replayed {
				t.Fatalf("usage = %+v, want cost %s, %d overage runs, balance %s", r, tc.cost, tc.overageRuns, tc.balance)
			}
		})
	}

	var replay usageResult
	c.json(0, &replay, "usage", "--wait", "acme", "1", "--event", "e-amount", "--json")
	if !replay.Replayed || replay.Status != "applied" || replay.BalanceAfter != "10.000" {
		t.Fatalf("replayed usage = %+v", replay)
	}

	var bal map[string]any
	c.json(0, &bal, "balance", "acme", "--json")
	want := map[string]any{"org": "acme", "available": "7.000", "held": "0.000", "debt": "0.000"}
	for k, v := range want {
		if bal[k] != v {
			t.Errorf("balance[%q] = %#v, want %#v", k, bal[k], v)
		}
	}
	lots, _ := bal["lots"].([]any)
	if len(lots) != 1 {
		t.Fatalf("lots = %#v", bal["lots"])
	}
	lot, _ := lots[0].(map[string]any)
	if _, ok := lot["id"].(float64); !ok || lot["source"] != "purchase" || lot["remaining"] != "7.000" {
		t.Errorf("lot = %#v", lot)
	}
	if v, ok := lot["expires_at"]; !ok || v != nil {
		t.Errorf("lot expires_at = %#v, want null", v)
	}
	if out := c.ok("balance", "acme"); !strings.Contains(out, "7.000") || !strings.Contains(out, "purchase") {
		t.Errorf("balance table:\n%s", out)
	}

	var hist struct {
		Entries []map[string]any `json:"entries"`
	}
	c.json(0, &hist, "history", "acme", "--json")
	wantEntries := []struct{ kind, amount, balanceAfter, key string }{
		{"grant", "11.000", "11.000", "grant:p1"},
		{"usage", "-1.000", "10.000", "usage:e-amount"},
		{"usage", "-2.000", "8.000", "usage:e-feature"},
		{"usage", "-0.500", "7.500", "usage:e-runs"},
		{"usage", "-0.500", "7.000", "usage:e-runs-label"},
	}
	if len(hist.Entries) != len(wantEntries) {
		t.Fatalf("history has %d entries, want %d: %v", len(hist.Entries), len(wantEntries), hist.Entries)
	}
	lastID := 0.0
	for i, w := range wantEntries {
		e := hist.Entries[i]
		if e["kind"] != w.kind || e["amount"] != w.amount || e["balance_after"] != w.balanceAfter || e["key"] != w.key {
			t.Errorf("entry %d = %v, want %+v", i, e, w)
		}
		at, _ := e["at"].(string)
		if _, err := time.Parse(time.RFC3339, at); err != nil {
			t.Errorf("entry %d: at = %#v: %v", i, e["at"], err)
		}
		if id, _ := e["id"].(float64); id <= lastID {
			t.Errorf("entry %d: id %v not after %v: not oldest first", i, e["id"], lastID)
		} else {
			lastID = id
		}
	}

	var shown map[string]any
	c.json(0, &shown, "org", "show", "acme", "--json")
	if b, _ := shown["balance"].(map[string]any); shown["org"] != "acme" || b["available"] != "7.000" {
		t.Errorf("org show = %v", shown)
	}

	var rep struct {
		OK         bool              `json:"ok"`
		Violations []json.RawMessage `json:"violations"`
	}
	c.json(0, &rep, "verify", "--json")
	if !rep.OK || len(rep.Violations) != 0 {
		t.Fatalf("verify = %+v", rep)
	}
	if out := c.ok("verify"); !strings.Contains(out, "ok") {
		t.Errorf("verify printed %q", out)
	}
}

func testLimitsRejectionsAndRestore(t *testing.T, c *cli) {
	c.startWorker(redisDBLimits)
	c.ok("org", "create", "acme", "--plan", "standard")
	c.ok("org", "create", "strict", "--plan", "standard", "--policy", "reject")
	c.ok("grant", "acme", "10", "--source", "promo", "--key", "promo-1")

	c.ok("limit", "set", "acme", "--team", "red", "3")
	for _, tc := range []struct {
		name, status, reason, balance string
		args                          []string
	}{
		{"rejected by the reject policy", "rejected", "insufficient_credits", "0.000", []string{"strict", "1", "--event", "s1"}},
		{"within the team limit", "applied", "", "8.000", []string{"acme", "2", "--team", "red", "--event", "r1"}},
		{"past the team limit", "rejected", "team_limit", "8.000", []string{"acme", "2", "--team", "red", "--event", "r2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r usageResult
			c.json(0, &r, append([]string{"usage", "--wait", "--json"}, tc.args...)...) // a rejection exits 0
			if r.Status != tc.status || r.Reason != tc.reason || r.BalanceAfter != tc.balance {
				t.Fatalf("usage = %+v, want %s %q balance %s", r, tc.status, tc.reason, tc.balance)
			}
		})
	}
	if out := c.ok("usage", "--wait", "acme", "5", "--team", "red", "--event", "r3"); !strings.Contains(out, "rejected") || !strings.Contains(out, "team_limit") {
		t.Errorf("human usage output = %q", out)
	}
	c.ok("limit", "remove", "acme", "--team", "red")
	c.ok("usage", "--wait", "acme", "2", "--team", "red", "--event", "r4")

	var res struct {
		Restored     string `json:"restored"`
		BalanceAfter string `json:"balance_after"`
	}
	c.json(0, &res, "restore", "acme", "--event", "r1", "--json")
	if res.Restored != "2.000" || res.BalanceAfter != "8.000" {
		t.Fatalf("restore = %+v", res)
	}
	c.json(0, &res, "restore", "acme", "--event", "r1", "--json")
	if res.BalanceAfter != "8.000" {
		t.Fatalf("second restore = %+v", res)
	}
	c.json(0, &struct{}{}, "verify", "--json")
}

func testBadInput(t *testing.T, c *cli) {
	c.startWorker(redisDBBadInput)
	c.ok("org", "create", "acme", "--plan", "free")
	c.ok("grant", "acme", "10", "--source", "purchase", "--key", "p1")
	c.ok("usage", "--wait", "acme", "1", "--event", "e1")
	balanceBefore := c.balanceWithoutAt("acme")
	historyBefore := c.ok("history", "acme", "--json")

	long := strings.Repeat("k", 201)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"unknown org", []string{"grant", "nope", "1", "--source", "purchase", "--key", "k"}, 1, "creditd: org nope: not found"},
		{"unknown org usage", []string{"usage", "nope", "1", "--event", "x"}, 1, "org nope: not found"},
		{"unknown org balance", []string{"balance", "nope", "--json"}, 1, "org nope: not found"},
		{"unknown org history", []string{"history", "nope"}, 1, "org nope: not found"},
		{"unknown org limit", []string{"limit", "set", "nope", "--team", "t", "1"}, 1, "org nope: not found"},
		{"unknown plan", []string{"org", "create", "beta", "--plan", "gold"}, 2, "plan: unknown plan"},
		{"missing plan", []string{"org", "create", "beta"}, 2, "plan: required"},
		{"zero amount", []string{"grant", "acme", "0", "--source", "promo", "--key", "k"}, 2, "amount: must be positive"},
		{"negative amount", []string{"grant", "acme", "-1", "--source", "promo", "--key", "k"}, 2, "amount: must be positive"},
		{"negative usage", []string{"usage", "acme", "-0.5", "--event", "x"}, 2, "amount: must be positive"},
		{"four decimals", []string{"grant", "acme", "1.0001", "--source", "promo", "--key", "k"}, 2, "amount: more than 3 decimal places"},
		{"four decimals usage", []string{"usage", "acme", "1.0001", "--event", "x"}, 2, "amount: more than 3 decimal places"},
		{"overflowing int64 millicredits", []string{"grant", "acme", "9223372036854776", "--source", "promo", "--key", "k"}, 2, "amount: out of range"},
		{"not a number", []string{"grant", "acme", "1e3", "--source", "promo", "--key", "k"}, 2, "amount: not a decimal number"},
		{"empty key", []string{"grant", "acme", "1", "--source", "promo", "--key", ""}, 2, "key: required"},
		{"over-long key", []string{"grant", "acme", "1", "--source", "promo", "--key", long}, 2, "key: longer than 200"},
		{"over-long event id", []string{"usage", "acme", "1", "--event", long}, 2, "event_id: longer than 200"},
		{"missing event id", []string{"usage", "acme", "1"}, 2, "event_id: required"},
		{"invalid time zone", []string{"org", "create", "beta", "--plan", "free", "--tz", "Mars/Base"}, 2, "tz: unknown time zone"},
		{"anchor that does not parse", []string{"org", "create", "beta", "--plan", "free", "--anchor", "2026-13-01T00:00:00Z"}, 2, "anchor:"},
		{"anchor without zone", []string{"org", "create", "beta", "--plan", "free", "--anchor", "2026-03-01"}, 2, "anchor:"},
		{"bad policy", []string{"org", "create", "beta", "--plan", "free", "--policy", "maybe"}, 2, "policy:"},
		{"bad email", []string{"org", "create", "beta", "--plan", "free", "--email", "nobody"}, 2, "email:"},
		{"monthly cap with four decimals", []string{"org", "create", "beta", "--plan", "free", "--monthly-cap", "1.0001"}, 2, "monthly_cap: more than 3 decimal places"},
		{"grant key replayed with another amount", []string{"grant", "acme", "11", "--source", "purchase", "--key", "p1"}, 1, `conflict: key "grant:p1"`},
		{"usage event replayed with another amount", []string{"usage", "--wait", "acme", "2", "--event", "e1"}, 1, `conflict: key "usage:e1"`},
		{"source the CLI does not grant", []string{"grant", "acme", "1", "--source", "allocation", "--key", "k"}, 2, "source: must be purchase, promo or adjustment"},
		{"missing source", []string{"grant", "acme", "1", "--key", "k"}, 2, "source: required"},
		{"purchase with expiry", []string{"grant", "acme", "1", "--source", "purchase", "--key", "k", "--expires", "2999-01-01T00:00:00Z"}, 2, "expires:"},
		{"expiry that does not parse", []string{"grant", "acme", "1", "--source", "promo", "--key", "k", "--expires", "tomorrow"}, 2, "expires:"},
		{"expiry in the past", []string{"grant", "acme", "1", "--source", "promo", "--key", "k", "--expires", "2000-01-01T00:00:00Z"}, 2, "expires:"},
		{"missing amount", []string{"grant", "acme", "--source", "promo", "--key", "k"}, 2, "amount: required"},
		{"extra argument", []string{"grant", "acme", "1", "2", "--source", "promo", "--key", "k"}, 2, `unexpected argument "2"`},
		{"unknown flag", []string{"grant", "acme", "1", "--source", "promo", "--key", "k", "--bogus"}, 2, "bogus"},
		{"flag without its value", []string{"grant", "acme", "1", "--source", "promo", "--key"}, 2, "key"},
		{"unknown feature", []string{"usage", "acme", "--feature", "teleport", "--event", "x"}, 2, "feature: unknown feature"},
		{"zero units", []string{"usage", "acme", "--feature", "microservice", "--units", "0", "--event", "x"}, 2, "units: must be positive"},
		{"zero runs", []string{"usage", "acme", "--runs", "0", "--event", "x"}, 2, "runs: must be positive"},
		{"amount and runs", []string{"usage", "acme", "1", "--runs", "3", "--event", "x"}, 2, "runs:"},
		{"nothing to charge", []string{"usage", "acme", "--event", "x"}, 2, "amount:"},
		{"balance at a time that does not parse", []string{"balance", "acme", "--at", "yesterday"}, 2, "at:"},
		{"limit for team and user", []string{"limit", "set", "acme", "--team", "t", "--user", "u", "1"}, 2, "team:"},
		{"limit for nobody", []string{"limit", "set", "acme", "1"}, 2, "team:"},
		{"zero limit", []string{"limit", "set", "acme", "--team", "t", "0"}, 2, "amount: must be positive"},
		{"restore of an unknown event", []string{"restore", "acme", "--event", "nope"}, 1, "usage event nope: not found"},
		{"bad org id", []string{"org", "create", "no spaces", "--plan", "free"}, 2, "org:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.rowCounts()
			r := c.run(tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.HasPrefix(r.stderr, "creditd: ") {
				t.Errorf("stderr = %q, want it to start with \"creditd: \" and contain %q", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if after := c.rowCounts(); after != before {
				t.Errorf("the database changed: %s -> %s", before, after)
			}
		})
	}
	if got := c.balanceWithoutAt("acme"); got != balanceBefore {
		t.Errorf("balance changed:\n%s\n->\n%s", balanceBefore, got)
	}
	if got := c.ok("history", "acme", "--json"); got != historyBefore {
		t.Errorf("history changed:\n%s\n->\n%s", historyBefore, got)
	}
	if r := c.run("org", "show", "beta"); r.code != 1 || !strings.Contains(r.stderr, "org beta: not found") {
		t.Errorf("org beta was created by bad input: %+v", r)
	}
}

// balanceWithoutAt is `balance ORG --json` without "at", which is now.
func (c *cli) balanceWithoutAt(org string) string {
	c.t.Helper()
	var bal map[string]any
	c.json(0, &bal, "balance", org, "--json")
	delete(bal, "at")
	b, _ := json.Marshal(bal)
	return string(b)
}

func testVerifyDetectsCorruptBalance(t *testing.T, c *cli) {
	c.startWorker(redisDBVerify)
	for _, org := range []string{"acme", "other"} {
		c.ok("org", "create", org, "--plan", "free")
		c.ok("grant", org, "10", "--source", "purchase", "--key", "p1")
		c.ok("usage", "--wait", org, "1", "--event", "e1")
	}
	c.json(0, &struct{}{}, "verify", "--json")

	c.exec(`UPDATE balances SET available = available + 1 WHERE org_id = $1`, "acme")

	var rep struct {
		OK         bool `json:"ok"`
		Violations []struct {
			Org    string `json:"org"`
			Check  string `json:"check"`
			Detail string `json:"detail"`
		} `json:"violations"`
	}
	c.json(1, &rep, "verify", "--json")
	if rep.OK {
		t.Fatal("verify reported ok")
	}
	found := false
	for _, v := range rep.Violations {
		if v.Org == "other" {
			t.Errorf("violation for an untouched org: %+v", v)
		}
		found = found || (v.Org == "acme" && v.Check == "balance_equals_entries")
	}
	if !found {
		t.Fatalf("no balance_equals_entries violation for acme: %+v", rep.Violations)
	}
	r := c.run("verify")
	if r.code != 1 || !strings.Contains(r.stdout, "balance_equals_entries") || !strings.Contains(r.stdout, "acme") {
		t.Fatalf("verify: exit %d, stdout %q", r.code, r.stdout)
	}
}

func testUsageAndEnvironment(t *testing.T, c *cli) {
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no command", c.env, nil, 2, "", "usage:"},
		{"unknown command", c.env, []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"web without REDIS_URL", c.env, []string{"web"}, 1, "", "REDIS_URL: required"},
		{"worker without REDIS_URL", c.env, []string{"worker"}, 1, "", "REDIS_URL: required"},
		{"group without subcommand", c.env, []string{"org"}, 2, "", "org: missing or unknown subcommand"},
		{"help", c.env, []string{"help"}, 0, "creditd grant", ""},
		{"-h", c.env, []string{"-h"}, 0, "creditd usage", ""},
		{"command help", c.env, []string{"usage", "-h"}, 0, "--wait", ""},
		{"help for a command", c.env, []string{"help", "balance"}, 0, "-at", ""},
		{"no DATABASE_URL", baseEnv(), []string{"balance", "acme"}, 1, "", "DATABASE_URL: required"},
		{"bad DATABASE_URL", slices.Concat(baseEnv(), []string{"DATABASE_URL=postgres://u:hunter2@[::1"}), []string{"migrate"}, 1, "", "DATABASE_URL:"},
		{"missing catalog file", slices.Concat(c.env, []string{"CREDITD_CATALOG=/nonexistent/catalog.yaml"}), []string{"verify"}, 1, "", "catalog /nonexistent/catalog.yaml"},
		{"config check without REDIS_URL", c.env, []string{"config", "check"}, 1, "", "REDIS_URL: required"},
		{"config check", slices.Concat(c.env, []string{"REDIS_URL=redis://127.0.0.1:6379/0"}), []string{"config", "check"}, 0, "config ok\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.runEnv(tc.env, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Fatalf("stderr shows the database password: %s", r.stderr)
			}
		})
	}
}
