package main

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func runPaymentMethodSet(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	customer := fs.String("customer", "", "the org's Stripe customer, cus_... (required)")
	pm := fs.String("payment-method", "", "the saved card, pm_... (required)")
	brand := fs.String("brand", "", "the card's brand, for people to recognise it (visa, mastercard, ...)")
	last4 := fs.String("last4", "", "the card's last four digits, for people to recognise it")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	p := ledger.PaymentMethod{OrgID: pos[0], CustomerID: *customer, PaymentMethodID: *pm, Brand: *brand, Last4: *last4}
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := a.openOrg(p.OrgID); err != nil {
		return err
	}
	if err := ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		p, err = a.ledger.SetPaymentMethod(a.ctx, tx, p)
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(p)
	}
	a.printf("%s: default card %s (customer %s) saved; nothing was charged\n", p.OrgID, p.PaymentMethodID, p.CustomerID)
	return nil
}

func runRechargeSet(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	threshold := fs.String("threshold", "", "charge when the balance is at or below this many credits")
	amount := fs.String("amount", "", "credits to buy per charge")
	target := fs.String("target", "", "buy what brings the balance back to this many credits, in one charge")
	monthlyCap := fs.String("monthly-cap", "", "the most automatic charges may spend per cycle, in the org's currency (e.g. 200.00)")
	off := fs.Bool("off", false, "turn auto-recharge off")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	r := ledger.RechargeSettings{OrgID: pos[0], Enabled: !*off}
	if *off {
		if *threshold != "" || *amount != "" || *target != "" || *monthlyCap != "" {
			return usageErrorf(c, "--off takes no other settings")
		}
	} else {
		if *threshold == "" {
			return invalid("threshold", "required")
		}
		if r.Threshold, err = credits.Parse(*threshold); err != nil {
			return invalid("threshold", "%v", err)
		}
		if (*amount == "") == (*target == "") {
			return usageErrorf(c, "give exactly one of --amount and --target")
		}
		for _, f := range []struct {
			name, value string
			into        **credits.Credits
		}{{"amount", *amount, &r.Amount}, {"target", *target, &r.Target}} {
			if f.value == "" {
				continue
			}
			v, err := parsePositive(f.name, f.value)
			if err != nil {
				return err
			}
			*f.into = &v
		}
	}
	if err := r.Validate(); err != nil {
		return err
	}
	org, err := a.openOrg(r.OrgID)
	if err != nil {
		return err
	}
	if *monthlyCap != "" {
		m, err := credits.ParseMoney(*monthlyCap, org.Currency)
		if err != nil {
			return invalid("monthly-cap", "%v", err)
		}
		r.MonthlyCap = &m
	}
	if err := ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		r, err = a.ledger.SetRecharge(a.ctx, tx, r)
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(r)
	}
	a.printf("%s\n", describeRecharge(r))
	return nil
}

func runRechargeShow(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	r, err := a.ledger.Recharge(a.ctx, a.pool, pos[0])
	if err != nil {
		return err
	}
	attempts, err := a.ledger.RechargeAttempts(a.ctx, a.pool, pos[0], 20)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(struct {
			ledger.RechargeSettings
			Attempts []ledger.RechargeAttempt `json:"attempts"`
		}{r, attempts})
	}
	a.printf("%s\n", describeRecharge(r))
	for _, at := range attempts {
		line := fmt.Sprintf("  %s %s %s credits for %s", at.ID, at.Status, at.Credits, at.Amount)
		if at.ErrorCode != "" {
			line += fmt.Sprintf(": %s %s %s", at.ErrorCode, at.DeclineCode, at.ErrorMessage)
		}
		a.printf("%s\n", line)
	}
	return nil
}

// describeRecharge says in words what auto-recharge will do.
func describeRecharge(r ledger.RechargeSettings) string {
	if !r.Enabled {
		return r.OrgID + ": auto-recharge is off"
	}
	var what string
	if r.Amount != nil {
		what = "buy " + r.Amount.String() + " credits"
	} else if r.Target != nil {
		what = "buy what brings the balance to " + r.Target.String()
	}
	s := fmt.Sprintf("%s: at or below %s credits, %s", r.OrgID, r.Threshold, what)
	if r.MonthlyCap != nil {
		s += ", at most " + r.MonthlyCap.String() + " a cycle"
	}
	if r.Paused {
		s += "; PAUSED (a failed charge, a dispute, a refunded recharge or a detached card)"
		if e := r.LastError; e != nil {
			s += fmt.Sprintf(" (%s %s: %s)", e.Code, e.DeclineCode, e.Message)
		}
		s += ": update the card or set it again"
	}
	return s
}
