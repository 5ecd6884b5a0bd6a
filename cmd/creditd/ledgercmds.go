package main

import (
	"flag"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func runGrant(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	source := fs.String("source", "", "purchase, promo or adjustment (required)")
	key := fs.String("key", "", "idempotency key, unique per org: the same key grants once (required)")
	expires := fs.String("expires", "", "when the credits expire, RFC 3339 (default never; purchases never expire)")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org", "amount")
	if err != nil {
		return err
	}
	amount, err := parsePositive("amount", pos[1])
	if err != nil {
		return err
	}
	// Allocation and recharge credits come from the cycle and payment jobs,
	// never from an operator.
	switch *source {
	case ledger.SourcePurchase, ledger.SourcePromo, ledger.SourceAdjustment:
	case "":
		return invalid("source", "required")
	default:
		return invalid("source", "must be purchase, promo or adjustment, not %q", *source)
	}
	g := ledger.Grant{OrgID: pos[0], Amount: amount, Source: *source, Key: *key}
	if isSet(fs, "expires") {
		t, err := parseTime("expires", *expires)
		if err != nil {
			return err
		}
		g.ExpiresAt = &t
	}
	if err := g.Validate(); err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	var res ledger.GrantResult
	err = ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		res, err = a.ledger.Grant(a.ctx, tx, g)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(res)
	}
	a.printf("granted %s to %s in lot %d", res.Amount, res.OrgID, res.LotID)
	if res.Repaid > 0 {
		a.printf(", %s of it repaid debt", res.Repaid)
	}
	a.printf(", balance %s%s\n", res.BalanceAfter, replayedNote(res.Replayed))
	return nil
}

func runBalance(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	at := fs.String("at", "", "the instant to read the balance at, RFC 3339 (default now)")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	var when *time.Time
	if isSet(fs, "at") {
		t, err := parseTime("at", *at)
		if err != nil {
			return err
		}
		when = &t
	}
	if err := a.connect(); err != nil {
		return err
	}
	if _, err := a.requireOrg(pos[0]); err != nil {
		return err
	}
	var bal ledger.Balance
	if when != nil {
		bal, err = a.ledger.BalanceAt(a.ctx, a.pool, pos[0], *when)
	} else {
		bal, err = a.ledger.Balance(a.ctx, a.pool, pos[0])
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(bal)
	}
	a.printBalance(bal)
	return nil
}

func runHistory(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	if _, err := a.requireOrg(pos[0]); err != nil {
		return err
	}
	entries := []ledger.Entry{}
	for after := int64(0); ; {
		page, err := a.ledger.History(a.ctx, a.pool, pos[0], after, ledger.MaxHistoryPage)
		if err != nil {
			return err
		}
		entries = append(entries, page...)
		if len(page) < ledger.MaxHistoryPage {
			break
		}
		after = page[len(page)-1].ID
	}
	if *asJSON {
		return a.printJSON(ledger.HistoryPage{Entries: entries})
	}
	a.printHistory(entries)
	return nil
}

func runVerify(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	asJSON := jsonFlag(fs)
	if _, err := a.parse(c, fs, args); err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	rep, err := a.ledger.Verify(a.ctx, a.pool)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		a.printVerify(rep)
	}
	if !rep.OK {
		return exitStatus(1)
	}
	return nil
}

// limitFlags adds --team and --user; scope returns the one given.
func limitFlags(fs *flag.FlagSet) (scope func() (ledger.LimitScope, string, error)) {
	team := fs.String("team", "", "the team the limit applies to")
	user := fs.String("user", "", "the user the limit applies to")
	return func() (ledger.LimitScope, string, error) {
		switch t, u := isSet(fs, "team"), isSet(fs, "user"); {
		case t && u:
			return "", "", invalid("team", "give --team or --user, not both")
		case t:
			return ledger.ScopeTeam, *team, nil
		case u:
			return ledger.ScopeUser, *user, nil
		default:
			return "", "", invalid("team", "give --team T or --user U")
		}
	}
}

func runLimitSet(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	scope := limitFlags(fs)
	pos, err := a.parse(c, fs, args, "org", "amount")
	if err != nil {
		return err
	}
	sc, subject, err := scope()
	if err != nil {
		return err
	}
	limit, err := parsePositive("amount", pos[1])
	if err != nil {
		return err
	}
	return a.setLimit(pos[0], sc, subject, &limit)
}

func runLimitRemove(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	scope := limitFlags(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	sc, subject, err := scope()
	if err != nil {
		return err
	}
	return a.setLimit(pos[0], sc, subject, nil)
}

func (a *app) setLimit(orgID string, scope ledger.LimitScope, subject string, limit *credits.Credits) error {
	if err := a.connect(); err != nil {
		return err
	}
	if _, err := a.requireOrg(orgID); err != nil {
		return err
	}
	err := ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) error {
		return a.ledger.SetLimit(a.ctx, tx, orgID, scope, subject, limit)
	})
	if err != nil {
		return err
	}
	if limit == nil {
		a.printf("%s %s of %s: no limit\n", scope, subject, orgID)
	} else {
		a.printf("%s %s of %s: limit %s a month\n", scope, subject, orgID, limit)
	}
	return nil
}

func runRestore(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	event := fs.String("event", "", "the usage event whose credits to give back (required)")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if *event == "" {
		return invalid("event_id", "required")
	}
	if err := a.connect(); err != nil {
		return err
	}
	// Looked up first, so that "not found" from Restore is about the event.
	if _, err := a.requireOrg(pos[0]); err != nil {
		return err
	}
	var res ledger.RestoreResult
	err = ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		res, err = a.ledger.Restore(a.ctx, tx, pos[0], *event)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(res)
	}
	a.printf("restored %s to %s for event %s, balance %s%s\n",
		res.Restored, res.OrgID, res.EventID, res.BalanceAfter, replayedNote(res.Replayed))
	return nil
}

func replayedNote(replayed bool) string {
	if replayed {
		return " (replayed: nothing changed)"
	}
	return ""
}
