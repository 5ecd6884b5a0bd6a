// Package payments talks to Stripe for creditd's workers, with
// github.com/stripe/stripe-go/v76: it implements the jobs.Charger the
// recharge task uses and the jobs.PaymentLister reconciliation reads
// PaymentIntents back with (never charging). It is a sub-package of jobs
// because jobs declares what it needs (the consumer's interface) and this
// is the one implementation; the ledger never sees Stripe. Package
// stripefake, beside it, is the fault-injecting Stripe its tests and jobs'
// tests run against.
package payments
