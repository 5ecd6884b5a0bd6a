package ledger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func TestVerify_DetectsCorruption(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		corrupt   string
		wantCheck string
	}{
		{"balance row", `UPDATE balances SET available = available + 1 WHERE org_id = 'acme'`, "balance_equals_entries"},
		{"lot remaining", `UPDATE lots SET remaining = remaining - 1 WHERE org_id = 'acme'`, "lot_equals_entries"},
		{"hold status", `UPDATE holds SET status = 'released', closed_at = now() WHERE org_id = 'acme'`, "held_equals_holds"},
		{"usage amount", `UPDATE usage_events SET amount = amount + 1 WHERE org_id = 'acme'`, "usage_equals_entries"},
		{"append-only trigger", `ALTER TABLE entries DISABLE TRIGGER entries_no_update`, "entries_append_only"},
		{"orphan usage", `INSERT INTO usage_events (org_id, event_id, status, amount, balance_after, request_hash, occurred_at, recorded_at, cycle_start)
		                  VALUES ('ghost', 'e', 'applied', 0, 0, '\x00', now(), now(), now())`, "rows_belong_to_orgs"},
		{"entry of a missing lot", `INSERT INTO entries (org_id, kind, amount, balance_after, lot_id, lot_delta, key, at)
		                            VALUES ('acme', 'grant', 1, 1, 999999, 1, 'x', now())`, "entry_lot_exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			org := f.org("acme", nil)
			f.grant(org, "10", ledger.SourcePurchase, "p", nil)
			f.use(org, "e1", "3")
			f.tx(func(tx pgx.Tx) error {
				_, err := f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: org, HoldID: "h", Amount: cr("2"), TTL: time.Hour})
				return err
			})
			f.verify()
			if _, err := f.pool.Exec(f.ctx, tt.corrupt); err != nil {
				t.Fatal(err)
			}
			rep, err := f.l.Verify(f.ctx, f.pool)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, v := range rep.Violations {
				found = found || v.Check == tt.wantCheck
			}
			if rep.OK || !found {
				t.Fatalf("verify = %+v, want a %s violation", rep, tt.wantCheck)
			}
		})
	}
}

func TestEntries_AppendOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	for _, sql := range []string{
		`UPDATE entries SET amount = 1`,
		`DELETE FROM entries`,
		`TRUNCATE entries CASCADE`,
	} {
		if _, err := f.pool.Exec(f.ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: err = %v, want refused as append-only", sql, err)
		}
	}
	if len(f.history(org)) != 1 {
		t.Fatal("entries changed")
	}
}

func TestBadInput_NoWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	long := strings.Repeat("x", ledger.MaxKeyLen+1)
	past := t0.Add(-time.Hour)
	tests := []struct {
		name      string
		op        func(tx pgx.Tx) error
		wantField string
		wantErr   error
	}{
		{"unknown org", func(tx pgx.Tx) error {
			_, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: "nobody", Amount: cr("1"), Source: "promo", Key: "k"})
			return err
		}, "", ledger.ErrNotFound},
		{"zero grant", func(tx pgx.Tx) error {
			_, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: 0, Source: "promo", Key: "k"})
			return err
		}, "amount", nil},
		{"negative usage", func(tx pgx.Tx) error {
			_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: org, EventID: "e", Amount: crp("-1")}})
			return err
		}, "amount", nil},
		{"empty key", func(tx pgx.Tx) error {
			_, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: cr("1"), Source: "promo", Key: ""})
			return err
		}, "key", nil},
		{"long key", func(tx pgx.Tx) error {
			_, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: cr("1"), Source: "promo", Key: long})
			return err
		}, "key", nil},
		{"long event id", func(tx pgx.Tx) error {
			_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: org, EventID: long, Amount: crp("1")}})
			return err
		}, "event_id", nil},
		{"unknown feature", func(tx pgx.Tx) error {
			_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: org, EventID: "e", Feature: "teleport"}})
			return err
		}, "feature", nil},
		{"amount and runs", func(tx pgx.Tx) error {
			_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: org, EventID: "e", Amount: crp("1"), Runs: 3}})
			return err
		}, "runs", nil},
		{"purchase with expiry", func(tx pgx.Tx) error {
			_, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: cr("1"), Source: "purchase", Key: "k", ExpiresAt: &past})
			return err
		}, "expires", nil},
		{"expiry in the past", func(tx pgx.Tx) error {
			_, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: cr("1"), Source: "promo", Key: "k", ExpiresAt: &past})
			return err
		}, "expires", nil},
		{"unknown plan", func(tx pgx.Tx) error {
			_, err := f.l.CreateOrg(f.ctx, tx, ledger.NewOrg{ID: "new", Plan: "platinum"})
			return err
		}, "plan", nil},
		{"invalid time zone", func(tx pgx.Tx) error {
			_, err := f.l.CreateOrg(f.ctx, tx, ledger.NewOrg{ID: "new", Plan: "free", TimeZone: "Mars/Base"})
			return err
		}, "tz", nil},
		{"bad org id", func(tx pgx.Tx) error {
			_, err := f.l.CreateOrg(f.ctx, tx, ledger.NewOrg{ID: "has space", Plan: "free"})
			return err
		}, "org", nil},
		{"grant key replayed with another amount", func(tx pgx.Tx) error {
			_, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: cr("11"), Source: ledger.SourcePurchase, Key: "p"})
			return err
		}, "", ledger.ErrConflict},
		{"org recreated with another plan", func(tx pgx.Tx) error {
			_, err := f.l.CreateOrg(f.ctx, tx, ledger.NewOrg{ID: org, Plan: "free", Anchor: &t0})
			return err
		}, "", ledger.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.history(org))
			err := ledger.WithTx(f.ctx, f.pool, tt.op)
			var v *ledger.ValidationError
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (!errors.As(err, &v) || v.Field != tt.wantField):
				t.Fatalf("err = %v, want a validation error naming %q", err, tt.wantField)
			}
			if after := len(f.history(org)); after != before {
				t.Fatalf("history grew from %d to %d entries", before, after)
			}
		})
	}
	var orgs int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM orgs`).Scan(&orgs); err != nil || orgs != 1 {
		t.Fatalf("orgs = %d, %v", orgs, err)
	}
	f.wantAvailable(org, "10.000")
	f.verify()
}

func TestCreateOrg_Idempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.org("acme", nil)
	f.org("acme", nil) // same settings: fine
	o, err := f.l.GetOrg(f.ctx, f.pool, "acme")
	if err != nil || o.Plan != "standard" || o.Policy != ledger.PolicyDebt || o.Currency != "USD" || !o.Anchor.Equal(t0) {
		t.Fatalf("org = %+v, %v", o, err)
	}
	if o.MonthlyCap != nil {
		t.Fatalf("cap = %v", credits.Credits(*o.MonthlyCap))
	}
}
