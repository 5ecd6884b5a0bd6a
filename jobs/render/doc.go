// Package render renders invoices and usage reports for people and
// spreadsheets: CSV (encoding/csv, one row per line with a section column,
// headers stable for scripts) and a printable HTML page (html/template from
// an embedded file, no external resources, no JavaScript). The CLI and the
// HTTP API both call it (`creditd report --csv` and GET .../report?format=csv
// use ReportCSV; the invoice command and route are to use InvoiceCSV and
// InvoiceHTML), so both print the same bytes. It lives under jobs beside
// httpapi, its other consumer, and reads nothing itself: callers pass what
// the ledger returned.
//
// Credits are printed as exact decimals (credits.Credits.String), money as
// decimals of the currency's minor unit (credits.Money.Decimal), times in
// RFC 3339, and a line that names no team, user or feature as "(none)".
package render

import "github.com/creditd/creditd/ledger/credits"

// None is how a line that names no team, user or feature is printed.
const None = "(none)"

// label prints a group key, "" as None.
func label(key string) string {
	if key == "" {
		return None
	}
	return key
}

// money prints minor units of currency as a decimal without the currency.
func money(minor int64, currency string) string {
	return credits.Money{Minor: minor, Currency: currency}.Decimal()
}
