// Package payments talks to Stripe for creditd's workers: it implements the
// jobs.Charger the recharge task uses, with github.com/stripe/stripe-go/v76.
// It is a sub-package of jobs because jobs declares what it needs (the
// consumer's interface) and this is the one implementation; the ledger
// never sees Stripe. Package stripefake, beside it, is the fault-injecting
// Stripe its tests and jobs' tests run against.
package payments
