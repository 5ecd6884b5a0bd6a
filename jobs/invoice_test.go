package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/payments"
	"github.com/creditd/creditd/jobs/payments/stripefake"
	"github.com/creditd/creditd/ledger"
)

// drainAll waits until the sweeps and payments queues are empty.
func (r *cycleRig) drainAll() {
	r.t.Helper()
	r.drain()
	waitFor(r.t, "the payments queue to drain", time.Minute, func() bool {
		q, err := r.insp.GetQueueInfo(jobs.QueuePayments)
		return err == nil && q.Pending+q.Active+q.Scheduled+q.Retry == 0
	})
}

func (r *cycleRig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	if err := ledger.WithTx(context.Background(), r.pool, fn); err != nil {
		r.t.Fatal(err)
	}
}

// TestInvoices_OncePerOrgAndPeriod invoices January for a dozen orgs through
// the real queue: two schedulers tick at once on two workers, the sweep runs
// again, one org's invoice is committed by a task that then died (its retry
// hands the charge on), and Stripe's answer to creating the first Stripe
// invoice is lost (the retry replays it). Every org gets one invoice, one alert, and
// each org that pays automatically one Stripe invoice charged once (or,
// where the card declines, one Stripe invoice, nothing charged, the decline
// recorded and the invoice open).
func TestInvoices_OncePerOrgAndPeriod(t *testing.T) {
	fake := stripefake.New(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newBillingRig(t, start.Add(30*time.Minute), 2, 3, payments.NewStripeWithBackend("sk_test_creditd", fake.Backend()))
	ctx := context.Background()
	var orgs []string
	for i := range 10 {
		id := fmt.Sprintf("inv%02d", i)
		r.org(id, []string{"standard", "free"}[i%2], start, "UTC")
		orgs = append(orgs, id)
	}
	// Four standard orgs pay automatically: 10.00 each; inv06's card
	// declines.
	payers := map[string]string{}
	for _, org := range []string{"inv00", "inv02", "inv04", "inv06"} {
		cus, pm := fake.NewCustomerWithCard(t, "tok_visa")
		payers[org] = cus
		if org == "inv06" {
			fake.SetDecline(pm, "card_declined", "insufficient_funds")
		}
		on := true
		r.tx(func(tx pgx.Tx) error {
			if _, err := r.ledger.SetPaymentMethod(ctx, tx, ledger.PaymentMethod{OrgID: org, CustomerID: cus, PaymentMethodID: pm}); err != nil {
				return err
			}
			_, err := r.ledger.SetInvoiceSettings(ctx, tx, ledger.InvoiceSettings{OrgID: org, AutoPay: &on})
			return err
		})
	}
	r.clock.Set(start.AddDate(0, 1, 0).Add(30 * time.Minute))

	// inv02's page committed its invoice and its worker died before it
	// handed the charge on.
	r.tx(func(tx pgx.Tx) error {
		_, err := r.ledger.MakeInvoices(ctx, tx, []string{"inv02"}, r.clock.Now())
		return err
	})
	// Stripe creates the first invoice asked for, but its answer is lost.
	fake.FailNext("/v1/invoices", 1, stripefake.FaultDropResponse)

	s1, s2 := r.scheduler(), r.scheduler()
	r.tickAll(s1, s2)
	r.drainAll()
	// The dead task's retry: the same page again.
	task, _, err := jobs.NewInvoiceTask(jobs.InvoicePayload{Version: jobs.InvoicePayloadVersion, At: r.clock.Now(), Orgs: []string{"inv02"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.queue.EnqueueContext(ctx, task); err != nil {
		t.Fatal(err)
	}
	r.drainAll()
	// A later sweep finds nothing left to do.
	r.clock.Set(r.clock.Now().Add(time.Hour))
	if _, err := r.client.Sweep(ctx, ledger.DueInvoices, r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r.drainAll()

	replays := 0
	for _, req := range fake.Requests() {
		if req.Path == "/v1/invoices" && req.Replayed {
			replays++
		}
	}
	if replays != 1 {
		t.Errorf("%d replayed invoice creations, want the one retry after the lost answer", replays)
	}
	var count int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM invoices`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != len(orgs) {
		t.Fatalf("%d invoices, want %d (one per org)", count, len(orgs))
	}
	for _, org := range orgs {
		inv, err := r.ledger.GetInvoice(ctx, r.pool, org, "2026-01")
		if err != nil {
			t.Fatalf("%s: %v", org, err)
		}
		notes, err := r.ledger.Notifications(ctx, r.pool, org, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, n := range notes {
			if n.Kind == ledger.AlertInvoiceReady {
				ready++
			}
		}
		if ready != 1 {
			t.Errorf("%s: %d invoice-ready alerts, want 1", org, ready)
		}
		cus, pays := payers[org]
		switch {
		case org == "inv06":
			if n := len(fake.Invoices(cus)); n != 1 || fake.Charges(cus) != 0 {
				t.Errorf("%s: %d Stripe invoices, %d cents charged; want 1 and nothing", org, n, fake.Charges(cus))
			}
			if inv.Status != ledger.InvoiceOpen || inv.StripeInvoiceID == "" || !strings.Contains(inv.PaymentError, "insufficient_funds") {
				t.Errorf("%s: invoice %s, Stripe %q, error %q; want open with the decline", org, inv.Status, inv.StripeInvoiceID, inv.PaymentError)
			}
		case pays:
			if n := len(fake.Invoices(cus)); n != 1 {
				t.Errorf("%s: %d Stripe invoices, want 1", org, n)
			}
			if got := fake.Charges(cus); got != 1000 {
				t.Errorf("%s: Stripe charged %d cents, want 1000 once", org, got)
			}
			if inv.Status != ledger.InvoicePaid || inv.StripeInvoiceID == "" || inv.PaidAt == nil {
				t.Errorf("%s: invoice %s, Stripe %q, paid at %v; want paid through Stripe", org, inv.Status, inv.StripeInvoiceID, inv.PaidAt)
			}
		case inv.Plan == "standard":
			if inv.Status != ledger.InvoiceOpen || inv.Totals.Due != 1000 {
				t.Errorf("%s: invoice %s, due %d; want open, 1000", org, inv.Status, inv.Totals.Due)
			}
		default:
			if inv.Status != ledger.InvoicePaid || inv.Totals.Due != 0 {
				t.Errorf("%s: free plan invoice %s, due %d; want paid, 0", org, inv.Status, inv.Totals.Due)
			}
		}
	}
	r.verify()
}
