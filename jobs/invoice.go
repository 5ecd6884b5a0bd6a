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

	"github.com/creditd/creditd/ledger"
)

// Monthly invoices: the invoice sweep (a sweep:due task of kind invoices)
// pages through the orgs with a month ended and not invoiced and fans each
// page out as an invoice:make task, which makes the page's invoices in one
// ledger transaction (ledger.MakeInvoices) and hands every open invoice of
// an org that pays automatically to an invoice:pay task.
const TypeInvoiceMake = "invoice:make"

// InvoicePayloadVersion is the version this code writes.
const InvoicePayloadVersion = 1

// InvoicePayload is one page of orgs to invoice as of At.
type InvoicePayload struct {
	Version int       `json:"v"`
	At      time.Time `json:"at"`
	Orgs    []string  `json:"orgs"`
}

func (p InvoicePayload) validate() error {
	switch {
	case p.Version < 1 || p.Version > InvoicePayloadVersion:
		return &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, InvoicePayloadVersion)}
	case p.At.IsZero():
		return &PayloadError{Field: "at", Reason: "required"}
	case len(p.Orgs) == 0 || len(p.Orgs) > ledger.MaxCyclePage:
		return &PayloadError{Field: "orgs", Reason: fmt.Sprintf("must hold 1 to %d orgs", ledger.MaxCyclePage)}
	}
	return nil
}

// InvoiceResult sums what invoice:make tasks did.
type InvoiceResult struct {
	Orgs     int          `json:"orgs"`
	Invoices int          `json:"invoices"`
	Periods  []string     `json:"periods,omitempty"` // "org period" of each invoice made
	Charges  int          `json:"charges"`           // invoice:pay tasks handed on
	Behind   []string     `json:"behind,omitempty"`
	Failed   []OrgFailure `json:"failed,omitempty"`
}

// Add sums o into r.
func (r *InvoiceResult) Add(o InvoiceResult) {
	r.Orgs += o.Orgs
	r.Invoices += o.Invoices
	r.Periods = append(r.Periods, o.Periods...)
	r.Charges += o.Charges
	r.Behind = append(r.Behind, o.Behind...)
	r.Failed = append(r.Failed, o.Failed...)
}

// NewInvoiceTask builds the task of one page and returns it with its id;
// like a cycle page's, the id is derived from the instant and the orgs.
func NewInvoiceTask(p InvoicePayload) (task *asynq.Task, id string, err error) {
	data, err := encodePayload(p, MaxBatchPayloadBytes)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256([]byte(strings.Join(p.Orgs, "\n")))
	id = "invoice:" + p.At.UTC().Format(time.RFC3339Nano) + ":" + hex.EncodeToString(sum[:12])
	return asynq.NewTask(TypeInvoiceMake, data, asynq.Queue(QueueSweeps), asynq.TaskID(id),
		asynq.MaxRetry(25), asynq.Timeout(5*time.Minute), asynq.Retention(AdvanceRetention)), id, nil
}

// InvoiceHandler makes the invoices of one page of orgs.
type InvoiceHandler struct {
	Ledger *ledger.Ledger
	DB     interface {
		ledger.DBTX
		ledger.TxBeginner
	}
	Queue enqueuer // an *asynq.Client, for the invoice:pay tasks
	Log   *slog.Logger
}

// ProcessTask makes the page's invoices in one transaction, then enqueues a
// charge for every open invoice of its orgs that is to be paid through
// Stripe and is not yet. That second step reads the invoices, not what the
// first step made: a task that crashed between the two finds them on retry,
// and so does the next month's.
func (h *InvoiceHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p InvoicePayload
	if err := decodeStrictN(t.Payload(), &p, MaxBatchPayloadBytes); err != nil {
		return permanent(err)
	}
	if err := p.validate(); err != nil {
		return permanent(err)
	}
	var reports []ledger.InvoiceReport
	err := ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) (err error) {
		reports, err = h.Ledger.MakeInvoices(ctx, tx, p.Orgs, p.At)
		return err
	})
	if err != nil {
		return pageError("invoice", len(p.Orgs), err)
	}
	res := InvoiceResult{Orgs: len(reports)}
	for _, r := range reports {
		for _, inv := range r.Made {
			res.Invoices++
			res.Periods = append(res.Periods, r.OrgID+" "+inv.Period)
		}
		if r.Behind {
			res.Behind = append(res.Behind, r.OrgID)
		}
		if r.Error != "" {
			res.Failed = append(res.Failed, OrgFailure{OrgID: r.OrgID, Error: r.Error})
			if h.Log != nil {
				h.Log.Warn("org not invoiced", "org", r.OrgID, "err", r.Error)
			}
		}
	}
	charges, err := h.Ledger.InvoiceCharges(ctx, h.DB, p.Orgs)
	if err != nil {
		return err
	}
	for _, c := range charges {
		task, err := NewInvoicePayTask(c.OrgID, c.Period)
		if err != nil {
			return err
		}
		if _, err := h.Queue.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("invoice %s %s: enqueue charge: %w", c.OrgID, c.Period, err)
		}
		res.Charges++
	}
	return writeResult(t, res)
}
