package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/creditd/creditd/ledger"
)

// orgPayments is the org's payment state as `org show` prints it: the
// saved card (nil when none: never saved, or detached in Stripe), the
// auto-recharge settings with their pause and last error, and the latest
// recharge attempt.
type orgPayments struct {
	PaymentMethod *ledger.PaymentMethod   `json:"payment_method"`
	Recharge      ledger.RechargeSettings `json:"recharge"`
	LastRecharge  *ledger.RechargeAttempt `json:"last_recharge"`
}

func (a *app) orgPayments(orgID string) (orgPayments, error) {
	var p orgPayments
	pm, err := a.ledger.GetPaymentMethod(a.ctx, a.pool, orgID)
	switch {
	case err == nil:
		p.PaymentMethod = &pm
	case !errors.Is(err, ledger.ErrNotFound):
		return p, err
	}
	if p.Recharge, err = a.ledger.Recharge(a.ctx, a.pool, orgID); err != nil {
		return p, err
	}
	as, err := a.ledger.RechargeAttempts(a.ctx, a.pool, orgID, 1)
	if err != nil {
		return p, err
	}
	if len(as) > 0 {
		p.LastRecharge = &as[0]
	}
	return p, nil
}

// paymentLines prints the payment state under the org's settings.
func paymentLines(tw *tabwriter.Writer, p orgPayments) {
	card := "none"
	if pm := p.PaymentMethod; pm != nil {
		card = fmt.Sprintf("%s %s (%s, customer %s)", orDash(pm.Brand), orDash(pm.Last4), pm.PaymentMethodID, pm.CustomerID)
	}
	fmt.Fprintf(tw, "card\t%s\n", card)
	r := p.Recharge
	recharge := "off"
	if r.Enabled {
		recharge = fmt.Sprintf("at or below %s", r.Threshold)
		if r.Amount != nil {
			recharge += ", buy " + r.Amount.String()
		} else {
			recharge += ", buy up to " + r.Target.String()
		}
		if r.MonthlyCap != nil {
			recharge += ", at most " + r.MonthlyCap.String() + " a cycle"
		}
	}
	fmt.Fprintf(tw, "auto-recharge\t%s\n", recharge)
	if r.Paused {
		fmt.Fprintf(tw, "recharge paused\tyes: update the card or set auto-recharge again\n")
	}
	if e := r.LastError; e != nil {
		code := e.Code
		if e.DeclineCode != "" {
			code += "/" + e.DeclineCode
		}
		fmt.Fprintf(tw, "last recharge error\t%s: %s (%s)\n", code, e.Message, e.At.Format("2006-01-02T15:04:05Z07:00"))
	}
	if at := p.LastRecharge; at != nil {
		fmt.Fprintf(tw, "last recharge\t%s %s: %s credits for %s\n", at.ID, at.Status, at.Credits, at.Amount)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
