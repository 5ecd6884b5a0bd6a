package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// Reconciliation: a payments:reconcile task lists the recent PaymentIntents
// of every org's saved Stripe customer and compares them with the ledger. A
// success the ledger lacks (a worker that died between Stripe's answer and
// the commit, a webhook never delivered) is credited through the same paths
// and keys as the recharge task and the webhook, so it is credited once
// whoever comes first. Everything else that disagrees is reported to
// operators (log, metric, task result), never repaired by taking credits
// back. It never charges: it only reads from Stripe.
//
// As the cycle sweeps do, the payments:reconcile task only pages through the
// orgs with a saved card and fans them out, ReconcilePageSize at a time, as
// payments:reconcile_page tasks, which do the checking; so any number of
// orgs is checked by any number of workers, each task short.
const (
	TypeReconcile     = "payments:reconcile"
	TypeReconcilePage = "payments:reconcile_page"
)

// ReconcilePayloadVersion is the version this code writes, for both types.
const ReconcilePayloadVersion = 1

const (
	// DefaultPendingAfter is how long a recharge attempt may stay pending
	// before reconciliation reports it: the recharge task retries a
	// transient failure for 77 to 96 minutes (RechargeMaxRetry tries,
	// RetryDelay with its jitter).
	DefaultPendingAfter = 2 * time.Hour
	// ReconcileRetention keeps a finished reconciliation and its result in
	// Redis, for `creditd reconcile` and a second scheduler's tick.
	ReconcileRetention = time.Hour
	// reconcileTimeout bounds one task, the sweep or a page.
	reconcileTimeout = 10 * time.Minute
	// ReconcilePageSize is the number of orgs per page task: a few Stripe
	// requests each, well inside the timeout.
	ReconcilePageSize = 100
	// MaxReconcilePages bounds the pages one sweep fans out (1,000,000
	// orgs); the result says when the rest was left for the next run.
	MaxReconcilePages = 10000
	// maxListedPerCustomer bounds the PaymentIntents read per customer and
	// run; a customer with more is reported as not fully checked.
	maxListedPerCustomer = 1000
	// maxReportItems bounds the credits and mismatches listed in a result
	// (asynq keeps it in Redis); the rest is counted, logged and measured.
	maxReportItems = 500
)

// Mismatch kinds: the label of creditd_payments_reconcile_mismatches_total.
const (
	// MismatchUncredited: Stripe took the money and the ledger refuses to
	// credit it (below the minimum purchase, no such org or attempt, an
	// attempt that failed before).
	MismatchUncredited = "uncredited"
	// MismatchNotSucceeded: credited, but Stripe's PaymentIntent is not
	// succeeded.
	MismatchNotSucceeded = "not_succeeded"
	// MismatchMissing: credited, but Stripe has no such PaymentIntent.
	MismatchMissing = "missing_in_stripe"
	// MismatchAmount: credited for another amount than Stripe received.
	MismatchAmount = "amount"
	// MismatchOtherOrg: credited to another org than the payment names.
	MismatchOtherOrg = "other_org"
	// MismatchPendingStale: a recharge attempt pending for longer than
	// PendingAfter with no success in Stripe (failed there, or absent). It
	// is left to the recharge task, which owns it.
	MismatchPendingStale = "pending_stale"
)

// MismatchKinds lists every kind, for metrics and documentation.
func MismatchKinds() []string {
	return []string{MismatchUncredited, MismatchNotSucceeded, MismatchMissing, MismatchAmount, MismatchOtherOrg, MismatchPendingStale}
}

// ReconcilePayload asks to check the PaymentIntents created in [Since, At].
type ReconcilePayload struct {
	Version int       `json:"v"`
	Since   time.Time `json:"since"`
	At      time.Time `json:"at"`
}

func (p ReconcilePayload) validate() error {
	switch {
	case p.Version < 1 || p.Version > ReconcilePayloadVersion:
		return &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, ReconcilePayloadVersion)}
	case p.At.IsZero():
		return &PayloadError{Field: "at", Reason: "required"}
	case p.Since.IsZero() || !p.Since.Before(p.At):
		return &PayloadError{Field: "since", Reason: "required, before at"}
	case p.At.Sub(p.Since) > config.MaxReconcileWindow:
		return &PayloadError{Field: "since", Reason: fmt.Sprintf("at most %s before at", config.MaxReconcileWindow)}
	}
	return nil
}

// ReconcileTaskID names the reconciliation as of at: schedulers ticking in
// the same minute derive the same id.
func ReconcileTaskID(at time.Time) string {
	return TypeReconcile + ":" + at.UTC().Format(time.RFC3339Nano)
}

// NewReconcileTask builds the reconciliation of PaymentIntents created in
// [since, at].
func NewReconcileTask(since, at time.Time) (*asynq.Task, error) {
	// Postgres keeps microseconds: the payload and the id name that instant.
	p := ReconcilePayload{Version: ReconcilePayloadVersion, Since: since.UTC().Truncate(time.Microsecond), At: at.UTC().Truncate(time.Microsecond)}
	if err := p.validate(); err != nil {
		return nil, err
	}
	data, err := encodePayload(p, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeReconcile, data, asynq.Queue(QueuePayments), asynq.TaskID(ReconcileTaskID(p.At)),
		asynq.MaxRetry(5), asynq.Timeout(reconcileTimeout), asynq.Retention(ReconcileRetention)), nil
}

// Reconcile enqueues the reconciliation of [since, at] and returns its task
// id. One already enqueued for at is not enqueued again.
func (c *Client) Reconcile(ctx context.Context, since, at time.Time) (string, error) {
	task, err := NewReconcileTask(since, at)
	if err != nil {
		return "", err
	}
	id := ReconcileTaskID(at.UTC().Truncate(time.Microsecond))
	if err := c.enqueue(ctx, task, QueuePayments, id); err != nil {
		return "", fmt.Errorf("enqueue reconciliation: %w", err)
	}
	return id, nil
}

// ReconcileSweepResult is what the sweep leaves: the page tasks it
// enqueued.
type ReconcileSweepResult struct {
	Orgs    int      `json:"orgs"`
	Tasks   []string `json:"tasks"`
	Partial bool     `json:"partial,omitempty"` // MaxReconcilePages reached; the rest waits for the next run
}

// ReconcilePagePayload is one page of orgs to check for [Since, At].
type ReconcilePagePayload struct {
	Version int       `json:"v"`
	Since   time.Time `json:"since"`
	At      time.Time `json:"at"`
	Orgs    []string  `json:"orgs"`
}

func (p ReconcilePagePayload) validate() error {
	if err := (ReconcilePayload{Version: p.Version, Since: p.Since, At: p.At}).validate(); err != nil {
		return err
	}
	if len(p.Orgs) == 0 || len(p.Orgs) > ReconcilePageSize {
		return &PayloadError{Field: "orgs", Reason: fmt.Sprintf("must hold 1 to %d orgs", ReconcilePageSize)}
	}
	return nil
}

// newReconcilePageTask builds the task of one page; its id is derived from
// the window and the orgs, so a retried sweep enqueues nothing new.
func newReconcilePageTask(p ReconcilePagePayload) (task *asynq.Task, id string, err error) {
	// A page of org ids of up to 128 characters fits in the batch bound.
	data, err := encodePayload(p, MaxBatchPayloadBytes)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256([]byte(strings.Join(p.Orgs, "\n")))
	id = TypeReconcilePage + ":" + p.At.UTC().Format(time.RFC3339Nano) + ":" + p.Since.UTC().Format(time.RFC3339Nano) + ":" +
		hex.EncodeToString(sum[:12])
	return asynq.NewTask(TypeReconcilePage, data, asynq.Queue(QueuePayments), asynq.TaskID(id), asynq.MaxRetry(5),
		asynq.Timeout(reconcileTimeout), asynq.Retention(ReconcileRetention+reconcileTimeout)), id, nil
}

// ReconcileSweepHandler pages through the orgs with a saved card and fans
// them out as page tasks.
type ReconcileSweepHandler struct {
	Ledger   *ledger.Ledger
	DB       ledger.DBTX
	Queue    enqueuer // an *asynq.Client
	PageSize int      // orgs per page task; ReconcilePageSize when 0
}

// ProcessTask reads the saved cards page by page (keyset paging) and
// enqueues one payments:reconcile_page task per page.
func (h *ReconcileSweepHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p ReconcilePayload
	if err := decodeStrict(t.Payload(), &p); err != nil {
		return permanent(err)
	}
	if err := p.validate(); err != nil {
		return permanent(err)
	}
	size := h.PageSize
	if size <= 0 || size > ReconcilePageSize {
		size = ReconcilePageSize
	}
	res := ReconcileSweepResult{Tasks: []string{}}
	after := ""
	for {
		cards, err := h.Ledger.PaymentCustomers(ctx, h.DB, after, size)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		if len(cards) > 0 {
			orgs := make([]string, len(cards))
			for i, c := range cards {
				orgs[i] = c.OrgID
			}
			task, id, err := newReconcilePageTask(ReconcilePagePayload{Version: ReconcilePayloadVersion, Since: p.Since, At: p.At, Orgs: orgs})
			if err != nil {
				return err
			}
			if _, err := h.Queue.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
				return fmt.Errorf("reconcile: enqueue page: %w", err)
			}
			res.Orgs += len(orgs)
			res.Tasks = append(res.Tasks, id)
			after = orgs[len(orgs)-1]
		}
		if len(cards) < size {
			break
		}
		if len(res.Tasks) >= MaxReconcilePages {
			res.Partial = true
			break
		}
	}
	return writeResult(t, res)
}

// ReconcileResult is what a reconciliation page found and did; Add sums
// the pages of one run.
type ReconcileResult struct {
	Since          time.Time         `json:"since"`
	At             time.Time         `json:"at"`
	Customers      int               `json:"customers"`       // Stripe customers listed
	PaymentIntents int               `json:"payment_intents"` // PaymentIntents read
	Credited       []ReconcileCredit `json:"credited"`        // successes the ledger lacked, credited now
	Mismatches     []Mismatch        `json:"mismatches"`      // disagreements left to operators
	Failed         []OrgFailure      `json:"failed,omitempty"`
	// Unlisted counts credits and mismatches beyond maxReportItems: logged
	// and counted in the metrics, not listed here.
	Unlisted int    `json:"unlisted,omitempty"`
	Skipped  string `json:"skipped,omitempty"` // why nothing was checked
	// Partial: the sweep stopped at MaxReconcilePages (set by whoever sums
	// the pages).
	Partial bool `json:"partial,omitempty"`
}

// Add sums the result of another page into r.
func (r *ReconcileResult) Add(o ReconcileResult) {
	r.Customers += o.Customers
	r.PaymentIntents += o.PaymentIntents
	r.Credited = append(r.Credited, o.Credited...)
	r.Mismatches = append(r.Mismatches, o.Mismatches...)
	r.Failed = append(r.Failed, o.Failed...)
	r.Unlisted += o.Unlisted
	if r.Skipped == "" {
		r.Skipped = o.Skipped
	}
}

// ReconcileCredit is a payment reconciliation credited.
type ReconcileCredit struct {
	OrgID     string          `json:"org"`
	PaymentID string          `json:"payment_id"`
	Kind      string          `json:"kind"` // ledger.PaymentPurchase or ledger.PaymentRecharge
	AttemptID string          `json:"attempt_id,omitempty"`
	Credits   credits.Credits `json:"credits"`
}

// Mismatch is a disagreement between Stripe and the ledger that
// reconciliation does not repair.
type Mismatch struct {
	Kind      string `json:"kind"`
	OrgID     string `json:"org"`
	PaymentID string `json:"payment_id,omitempty"`
	AttemptID string `json:"attempt_id,omitempty"`
	Detail    string `json:"detail"`
}

// PaymentIntent is what reconciliation reads of a Stripe PaymentIntent.
type PaymentIntent struct {
	ID       string
	Customer string
	Status   string        // Stripe's: succeeded, processing, requires_payment_method, canceled, ...
	Amount   credits.Money // what was received when succeeded, else what was asked
	Metadata map[string]string
	Created  time.Time
	Invoice  string // the Stripe invoice it pays, if any: not a purchase of credits
}

// PaymentIntentSucceeded is the status of a PaymentIntent that was paid.
const PaymentIntentSucceeded = "succeeded"

// ErrNoSuchPayment is Stripe saying it has no PaymentIntent of that id.
var ErrNoSuchPayment = errors.New("no such payment intent in Stripe")

// PaymentLister reads PaymentIntents back from Stripe (payments.Stripe). It
// never charges.
type PaymentLister interface {
	// ListPaymentIntents returns the customer's PaymentIntents created at or
	// after since, newest first, at most max; more reports that there were
	// more.
	ListPaymentIntents(ctx context.Context, customer string, since time.Time, max int) (pis []PaymentIntent, more bool, err error)
	// GetPaymentIntent reads one; ErrNoSuchPayment when Stripe has none.
	GetPaymentIntent(ctx context.Context, id string) (PaymentIntent, error)
}

// ReconcileHandler checks pages of orgs.
type ReconcileHandler struct {
	Ledger *ledger.Ledger
	DB     interface {
		ledger.DBTX
		ledger.TxBeginner
	}
	Stripe  PaymentLister     // nil: payments are off, and nothing is checked
	Log     *slog.Logger      // nil: slog.Default()
	Metrics *ReconcileMetrics // nil: not measured
	// PendingAfter is how long a recharge attempt may stay pending before
	// it is reported; DefaultPendingAfter when 0.
	PendingAfter time.Duration
}

// ProcessTask checks the page's orgs and stores the result.
func (h *ReconcileHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p ReconcilePagePayload
	if err := decodeStrictN(t.Payload(), &p, MaxBatchPayloadBytes); err != nil {
		return permanent(err)
	}
	if err := p.validate(); err != nil {
		return permanent(err)
	}
	res, err := h.Reconcile(ctx, p.Orgs, p.Since, p.At)
	if err != nil {
		return err
	}
	return writeResult(t, res)
}

// Reconcile compares the PaymentIntents created in [since, at] of the
// orgs' saved customers with the ledger: it credits the successes the
// ledger lacks and reports the rest (see the Mismatch kinds). An org
// without a saved card (removed since the sweep) is skipped. Stripe errors
// for one customer are reported in Failed and the others go on; a database
// error ends the run (the task retries; what was credited stays credited
// once).
func (h *ReconcileHandler) Reconcile(ctx context.Context, orgs []string, since, at time.Time) (ReconcileResult, error) {
	res := ReconcileResult{Since: since, At: at, Credited: []ReconcileCredit{}, Mismatches: []Mismatch{}}
	if h.Stripe == nil {
		res.Skipped = "payments are not configured: set STRIPE_SECRET_KEY"
		h.log().Warn("reconciliation skipped", "err", res.Skipped)
		return res, nil
	}
	listed := map[string]bool{} // customers shared by orgs are listed once
	for _, org := range orgs {
		pm, err := h.Ledger.GetPaymentMethod(ctx, h.DB, org)
		if errors.Is(err, ledger.ErrNotFound) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("reconcile org %s: %w", org, err)
		}
		if err := h.reconcileOrg(ctx, pm, listed, &res); err != nil {
			return res, fmt.Errorf("reconcile org %s: %w", org, err)
		}
	}
	return res, nil
}

// reconcileOrg checks one org: its customer's PaymentIntents, its pending
// recharge attempt, and the payments credited to it in the window.
func (h *ReconcileHandler) reconcileOrg(ctx context.Context, pm ledger.PaymentMethod, listed map[string]bool, res *ReconcileResult) error {
	seen := map[string]PaymentIntent{}
	if !listed[pm.CustomerID] {
		listed[pm.CustomerID] = true
		pis, more, err := h.Stripe.ListPaymentIntents(ctx, pm.CustomerID, res.Since, maxListedPerCustomer)
		if err != nil {
			h.fail(res, pm.OrgID, fmt.Sprintf("list payment intents of %s: %v", pm.CustomerID, err))
			return ctx.Err()
		}
		if more {
			h.fail(res, pm.OrgID, fmt.Sprintf("customer %s has more than %d payment intents since %s: the older ones were not checked",
				pm.CustomerID, maxListedPerCustomer, res.Since.Format(time.RFC3339)))
		}
		res.Customers++
		res.PaymentIntents += len(pis)
		for _, pi := range pis {
			seen[pi.ID] = pi
			// A payment of a Stripe invoice (auto-pay) buys no credits: the
			// invoice's own events settle it.
			if pi.Status != PaymentIntentSucceeded || pi.Created.After(res.At) || pi.Invoice != "" {
				continue
			}
			if err := h.reconcileSucceeded(ctx, pm, pi, res); err != nil {
				return err
			}
		}
	}
	if err := h.checkPending(ctx, pm.OrgID, seen, res); err != nil {
		return err
	}
	return h.checkCredited(ctx, pm.OrgID, seen, res)
}

// reconcileSucceeded credits a succeeded PaymentIntent the ledger lacks, as
// the webhook would: a recharge through its attempt, a purchase of the
// package or credits its metadata names (else at the catalog's rate); both
// keyed by the PaymentIntent, so never twice.
func (h *ReconcileHandler) reconcileSucceeded(ctx context.Context, pm ledger.PaymentMethod, pi PaymentIntent, res *ReconcileResult) error {
	org := pi.Metadata["org_id"]
	if org == "" {
		// The webhook's rule: the org whose saved card belongs to the customer.
		o, err := h.Ledger.OrgOfCustomer(ctx, h.DB, pi.Customer)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			org = pm.OrgID // the card was replaced since the listing
		case err != nil:
			return err
		default:
			org = o
		}
	}
	attempt := pi.Metadata["recharge_attempt"]
	p, err := h.Ledger.GetPayment(ctx, h.DB, pi.ID)
	switch {
	case err == nil:
		h.compare(res, p, pi)
		if p.OrgID != org {
			h.mismatch(res, Mismatch{Kind: MismatchOtherOrg, OrgID: p.OrgID, PaymentID: pi.ID, AttemptID: attempt,
				Detail: fmt.Sprintf("credited to org %s, but the payment names org %s", p.OrgID, org)})
		}
		return nil
	case !errors.Is(err, ledger.ErrNotFound):
		return err
	}
	kind := ledger.PaymentPurchase
	if attempt != "" {
		kind = ledger.PaymentRecharge
	}
	var g ledger.GrantResult
	err = ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) (err error) {
		if attempt != "" {
			g, err = h.Ledger.CompleteRecharge(ctx, tx, org, attempt, pi.ID)
		} else {
			order, oerr := purchaseOrder(pi.Metadata) // the package or credits the webhook would honour
			if oerr != nil {
				return &ledger.ValidationError{Field: "metadata", Reason: oerr.Error()}
			}
			g, err = h.Ledger.CreditOrder(ctx, tx, org, pi.ID, pi.Amount, order)
		}
		return err
	})
	var v *ledger.ValidationError
	switch {
	case err == nil:
	case errors.Is(err, ledger.ErrNotFound), errors.Is(err, ledger.ErrConflict), errors.As(err, &v):
		h.mismatch(res, Mismatch{Kind: MismatchUncredited, OrgID: org, PaymentID: pi.ID, AttemptID: attempt,
			Detail: fmt.Sprintf("succeeded in Stripe for %s, not credited: %v", pi.Amount, err)})
		return nil
	default:
		return err
	}
	if g.Replayed {
		return nil // another path (the task, the webhook) credited it meanwhile
	}
	h.Metrics.repaired(kind)
	h.log().Warn("payment credited by reconciliation", "kind", kind, "org", org, "payment_id", pi.ID, "attempt_id", attempt,
		"credits", g.Amount.String())
	if len(res.Credited) < maxReportItems {
		res.Credited = append(res.Credited, ReconcileCredit{OrgID: org, PaymentID: pi.ID, Kind: kind, AttemptID: attempt, Credits: g.Amount})
	} else {
		res.Unlisted++
	}
	return nil
}

// checkPending reports the org's recharge attempt pending for longer than
// PendingAfter with no success in Stripe. The recharge task owns it.
func (h *ReconcileHandler) checkPending(ctx context.Context, org string, seen map[string]PaymentIntent, res *ReconcileResult) error {
	// At most one attempt per org is pending, and it is the newest.
	as, err := h.Ledger.RechargeAttempts(ctx, h.DB, org, 1)
	if err != nil {
		return err
	}
	if len(as) == 0 || as[0].Status != ledger.RechargePending {
		return nil
	}
	a := as[0]
	after := h.PendingAfter
	if after <= 0 {
		after = DefaultPendingAfter
	}
	if res.At.Sub(a.CreatedAt) < after {
		return nil
	}
	m := Mismatch{Kind: MismatchPendingStale, OrgID: org, AttemptID: a.ID,
		Detail: fmt.Sprintf("pending since %s; Stripe has no payment intent for it", a.CreatedAt.Format(time.RFC3339))}
	for _, pi := range seen {
		if pi.Metadata["recharge_attempt"] == a.ID {
			m.PaymentID = pi.ID
			m.Detail = fmt.Sprintf("pending since %s; Stripe's payment intent is %s", a.CreatedAt.Format(time.RFC3339), pi.Status)
		}
	}
	h.mismatch(res, m)
	return nil
}

// checkCredited reports the payments credited to the org in the window that
// Stripe does not show as succeeded for the same amount. Credits are never
// taken back automatically.
func (h *ReconcileHandler) checkCredited(ctx context.Context, org string, seen map[string]PaymentIntent, res *ReconcileResult) error {
	ps, err := h.Ledger.Payments(ctx, h.DB, org, res.Since, res.At)
	if err != nil {
		return err
	}
	for _, p := range ps {
		pi, ok := seen[p.PaymentID]
		if ok && pi.Status == PaymentIntentSucceeded {
			continue // compared when it was listed
		}
		if !ok {
			// Created before the window, or paid without the org's customer.
			if pi, err = h.Stripe.GetPaymentIntent(ctx, p.PaymentID); errors.Is(err, ErrNoSuchPayment) {
				h.mismatch(res, Mismatch{Kind: MismatchMissing, OrgID: org, PaymentID: p.PaymentID,
					Detail: fmt.Sprintf("credited %s credits for %s; Stripe has no such payment intent", p.Credits, p.Paid)})
				continue
			} else if err != nil {
				h.fail(res, org, fmt.Sprintf("read payment intent %s: %v", p.PaymentID, err))
				if ctx.Err() != nil {
					return ctx.Err()
				}
				continue
			}
		}
		if pi.Status != PaymentIntentSucceeded {
			h.mismatch(res, Mismatch{Kind: MismatchNotSucceeded, OrgID: org, PaymentID: p.PaymentID,
				Detail: fmt.Sprintf("credited %s credits for %s; Stripe's payment intent is %s", p.Credits, p.Paid, pi.Status)})
			continue
		}
		h.compare(res, p, pi)
	}
	return nil
}

// compare reports a credited payment whose amount differs from Stripe's.
func (h *ReconcileHandler) compare(res *ReconcileResult, p ledger.Payment, pi PaymentIntent) {
	if p.Paid.Minor == pi.Amount.Minor && strings.EqualFold(p.Paid.Currency, pi.Amount.Currency) {
		return
	}
	h.mismatch(res, Mismatch{Kind: MismatchAmount, OrgID: p.OrgID, PaymentID: p.PaymentID,
		Detail: fmt.Sprintf("credited as paid %s; Stripe received %s", p.Paid, pi.Amount)})
}

// mismatch reports m: one warning line with fixed keys, the metric, and the
// result.
func (h *ReconcileHandler) mismatch(res *ReconcileResult, m Mismatch) {
	h.log().Warn("payment mismatch", "kind", m.Kind, "org", m.OrgID, "payment_id", m.PaymentID, "attempt_id", m.AttemptID, "detail", m.Detail)
	h.Metrics.mismatched(m.Kind)
	if len(res.Mismatches) < maxReportItems {
		res.Mismatches = append(res.Mismatches, m)
	} else {
		res.Unlisted++
	}
}

// fail notes an org that could not be fully checked (Stripe unreachable,
// say); the next run checks it again.
func (h *ReconcileHandler) fail(res *ReconcileResult, org, reason string) {
	h.log().Warn("reconciliation incomplete", "org", org, "err", reason)
	if len(res.Failed) < maxReportItems {
		res.Failed = append(res.Failed, OrgFailure{OrgID: org, Error: reason})
	} else {
		res.Unlisted++
	}
}

func (h *ReconcileHandler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}
