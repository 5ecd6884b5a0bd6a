package main

import (
	"flag"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// invoiceFlags are `org set`'s flags of how an org's invoices are billed.
type invoiceFlags struct {
	fs      *flag.FlagSet
	autoPay *string
	price   *string
}

func addInvoiceFlags(fs *flag.FlagSet) *invoiceFlags {
	return &invoiceFlags{
		fs:      fs,
		autoPay: fs.String("auto-pay", "", "on: charge the org's monthly invoices to its saved card through Stripe; off: leave them open"),
		price:   fs.String("price", "", "the org's own monthly price in its currency (enterprise terms), e.g. 1500.00; \"plan\" bills the plan's price again"),
	}
}

func (f *invoiceFlags) given() bool { return isSet(f.fs, "auto-pay") || isSet(f.fs, "price") }

// settings returns the invoice settings given for org, or nil when none was.
func (f *invoiceFlags) settings(org ledger.Org) (*ledger.InvoiceSettings, error) {
	if !f.given() {
		return nil, nil
	}
	s := ledger.InvoiceSettings{OrgID: org.ID}
	if isSet(f.fs, "auto-pay") {
		var on bool
		switch *f.autoPay {
		case "on":
			on = true
		case "off":
		default:
			return nil, invalid("auto-pay", "must be on or off, not %q", *f.autoPay)
		}
		s.AutoPay = &on
	}
	if isSet(f.fs, "price") {
		minor := int64(-1)
		if *f.price != "plan" {
			m, err := credits.ParseMoney(*f.price, org.Currency)
			if err != nil || m.Minor < 0 {
				return nil, invalid("price", "%q is not an amount of %s like 1500.00 (or \"plan\")", *f.price, org.Currency)
			}
			minor = m.Minor
		}
		s.Price = &minor
	}
	return &s, nil
}

// setInvoiceSettings changes only the org's invoice settings and prints the org.
func (a *app) setInvoiceSettings(s ledger.InvoiceSettings, asJSON bool) error {
	var org ledger.Org
	err := ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		org, err = a.ledger.SetInvoiceSettings(a.ctx, tx, s)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return a.printJSON(org)
	}
	price := "the plan's"
	if org.Price != nil {
		price = credits.Money{Minor: *org.Price, Currency: org.Currency}.String()
	}
	a.printf("org %s: auto-pay %s, monthly price %s\n", org.ID, onOff(org.AutoPay), price)
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
