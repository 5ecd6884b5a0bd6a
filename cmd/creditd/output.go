package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/creditd/creditd/ledger"
)

// printJSON writes v as the command's one JSON document.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

func (a *app) table() *tabwriter.Writer { return tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0) }

func (a *app) printOrg(o ledger.Org, b ledger.Balance, p orgPayments) {
	tw := a.table()
	emails := strings.Join(o.Emails, ", ")
	if emails == "" {
		emails = "-"
	}
	monthlyCap := "none"
	if o.MonthlyCap != nil {
		monthlyCap = o.MonthlyCap.String()
	}
	fmt.Fprintf(tw, "org\t%s\n", o.ID)
	fmt.Fprintf(tw, "plan\t%s\n", o.Plan)
	fmt.Fprintf(tw, "anchor\t%s (%s)\n", o.Anchor.Format(time.RFC3339), o.TimeZone)
	fmt.Fprintf(tw, "policy\t%s\n", o.Policy)
	fmt.Fprintf(tw, "currency\t%s\n", o.Currency)
	fmt.Fprintf(tw, "emails\t%s\n", emails)
	fmt.Fprintf(tw, "monthly cap\t%s\n", monthlyCap)
	fmt.Fprintf(tw, "auto-pay\t%s\n", onOff(o.AutoPay))
	fmt.Fprintf(tw, "created\t%s\n", o.CreatedAt.Format(time.RFC3339))
	balanceLines(tw, b)
	paymentLines(tw, p)
	tw.Flush()
}

func balanceLines(tw *tabwriter.Writer, b ledger.Balance) {
	fmt.Fprintf(tw, "available\t%s\n", b.Available)
	fmt.Fprintf(tw, "held\t%s\n", b.Held)
	fmt.Fprintf(tw, "debt\t%s\n", b.Debt)
	if b.Paused {
		fmt.Fprintf(tw, "paused\tyes\n")
	}
}

func (a *app) printBalance(b ledger.Balance) {
	tw := a.table()
	fmt.Fprintf(tw, "org\t%s\n", b.OrgID)
	fmt.Fprintf(tw, "at\t%s\n", b.At.Format(time.RFC3339))
	balanceLines(tw, b)
	tw.Flush()
	if len(b.Lots) == 0 {
		a.printf("\nno lots\n")
		return
	}
	a.printf("\n")
	tw = a.table()
	fmt.Fprintln(tw, "LOT\tSOURCE\tAMOUNT\tREMAINING\tGRANTED\tEXPIRES")
	for _, l := range b.Lots {
		expires := "never"
		if l.ExpiresAt != nil {
			expires = l.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Source, l.Amount, l.Remaining, l.GrantedAt.Format(time.RFC3339), expires)
	}
	tw.Flush()
}

func (a *app) printHistory(entries []ledger.Entry) {
	if len(entries) == 0 {
		a.printf("no entries\n")
		return
	}
	tw := a.table()
	fmt.Fprintln(tw, "ID\tAT\tKIND\tAMOUNT\tBALANCE\tKEY")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339), e.Kind, e.Amount, e.BalanceAfter, e.Key)
	}
	tw.Flush()
}

func (a *app) printVerify(rep ledger.VerifyReport) {
	if rep.OK {
		a.printf("ledger ok: %d orgs, %d entries\n", rep.Orgs, rep.Entries)
		return
	}
	a.printf("%d violations (%d orgs, %d entries checked):\n", len(rep.Violations), rep.Orgs, rep.Entries)
	tw := a.table()
	fmt.Fprintln(tw, "ORG\tCHECK\tDETAIL")
	for _, v := range rep.Violations {
		org := v.OrgID
		if org == "" {
			org = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", org, v.Check, v.Detail)
	}
	tw.Flush()
}
