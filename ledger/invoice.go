package ledger

import (
	"time"

	"github.com/creditd/creditd/ledger/credits"
)

// Invoice states. A draft is being made; an open invoice waits to be paid
// (by the host application, or by Stripe where the org pays automatically);
// paid and void are final.
const (
	InvoiceDraft = "draft"
	InvoiceOpen  = "open"
	InvoicePaid  = "paid"
	InvoiceVoid  = "void"
)

// Invoice is an org's statement for one calendar month in its time zone:
// what it owes (the plan's fee), what it already paid (purchases and
// recharges), and what happened to its credits. Credits are exact
// millicredits, money is minor units of the org's currency.
type Invoice struct {
	OrgID    string `json:"org"`
	Period   string `json:"period"` // YYYY-MM
	Currency string `json:"currency"`
	Status   string `json:"status"` // draft, open, paid or void
	// [PeriodStart, PeriodEnd): midnight of the 1st of the month and of the
	// next month in the org's time zone.
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	TimeZone    string    `json:"time_zone"`

	Plan            string           `json:"plan"`
	SubscriptionFee credits.Money    `json:"subscription_fee"`
	Payments        []InvoicePayment `json:"payments"` // purchases and recharges in the period, already paid

	UsageByFeature []UsageLine `json:"usage_by_feature"`
	UsageByTeam    []UsageLine `json:"usage_by_team"`
	Runs           RunsLine    `json:"runs"`

	Granted credits.Credits `json:"granted"`         // every credit added in the period (allocations, purchases, recharges, promos, restores, adjustments)
	Used    credits.Credits `json:"used"`            // every credit spent by usage and captures in the period
	Expired credits.Credits `json:"expired"`         // credits that expired in the period
	Taken   credits.Credits `json:"taken,omitempty"` // credits taken back by refunds and disputes in the period
	// HeldChange is the change of credits on hold over the period (placed
	// minus released or captured): closing = opening + granted - used -
	// expired - taken - held_change.
	HeldChange     credits.Credits `json:"held_change"`
	OpeningBalance credits.Credits `json:"opening_balance"` // available at PeriodStart
	ClosingBalance credits.Credits `json:"closing_balance"` // available at PeriodEnd
	ClosingDebt    credits.Credits `json:"closing_debt"`    // debt at PeriodEnd

	Totals InvoiceTotals `json:"totals"`

	StripeInvoiceID string     `json:"stripe_invoice_id,omitempty"` // where the org pays automatically
	PaymentError    string     `json:"payment_error,omitempty"`     // why the last automatic payment failed
	CreatedAt       time.Time  `json:"created_at"`
	PaidAt          *time.Time `json:"paid_at,omitempty"`
}

// InvoicePayment is one payment credited in the period.
type InvoicePayment struct {
	PaymentID string          `json:"payment_id"`
	Kind      string          `json:"kind"` // purchase or recharge
	Credits   credits.Credits `json:"credits"`
	Amount    credits.Money   `json:"amount"`
	PaidAt    time.Time       `json:"paid_at"`
}

// UsageLine is the usage of one feature or one team in the period. Key is
// the feature or team name; "" groups usage that named none.
type UsageLine struct {
	Key      string          `json:"key"`
	Events   int64           `json:"events"`
	Credits  credits.Credits `json:"credits"`
	Rejected int64           `json:"rejected,omitempty"` // events refused (reject policy, limits), for the record
}

// RunsLine is the period's runs: those inside the plan's included runs cost
// nothing; each overage run cost the plan's overage rate, drawn at once.
type RunsLine struct {
	Runs           int64           `json:"runs"`
	Included       int64           `json:"included"`
	Overage        int64           `json:"overage"`
	OverageCredits credits.Credits `json:"overage_credits"`
}

// InvoiceTotals are the invoice's money in minor units of its currency.
// Due is what the org owes for the period (the subscription fee); Paid is
// what it already paid during the period (purchases and recharges).
type InvoiceTotals struct {
	Subscription int64 `json:"subscription_minor"`
	Payments     int64 `json:"payments_minor"`
	Due          int64 `json:"due_minor"`
}
