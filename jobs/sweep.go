package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// Cycle work: a sweep finds the orgs with work of one kind due as of an
// instant, in pages, and fans each page out as a cycle:advance task, which
// performs everything due for its orgs in one ledger transaction. Both carry
// the instant they act for, never the wall clock, so a backfill or a
// simulated year runs the same code.
const (
	TypeSweep   = "sweep:due"
	TypeAdvance = "cycle:advance"
)

// SweepPayloadVersion and AdvancePayloadVersion are the versions this code writes.
const (
	SweepPayloadVersion   = 1
	AdvancePayloadVersion = 1
)

// SweepRetention and AdvanceRetention keep completed sweep and advance tasks
// (and their results) in Redis: a second scheduler's tick in the same minute
// finds the first one's task and enqueues nothing, and `creditd cycle` reads
// the results.
// A page is kept longer than its sweep: the sweep's hour starts only when it
// has enqueued its last page, and its result names the first one too.
const (
	SweepRetention   = time.Hour
	AdvanceRetention = SweepRetention + sweepTimeout
)

// sweepTimeout bounds one sweep's run.
const sweepTimeout = 10 * time.Minute

// DefaultSweepPage is the number of orgs per cycle:advance task: large enough
// that a page is a few set-based statements, small enough that one
// transaction stays short.
const DefaultSweepPage = 500

// MaxSweepPages bounds the pages one sweep fans out (5,000,000 orgs at the
// default page size); what is left stays due for the next sweep.
const MaxSweepPages = 10000

// SweepPayload asks for the orgs with work of Kind due as of At.
type SweepPayload struct {
	Version int            `json:"v"`
	Kind    ledger.DueKind `json:"kind"`
	At      time.Time      `json:"at"`
}

// SweepResult is what a sweep leaves: the advance tasks it enqueued.
type SweepResult struct {
	Orgs    int      `json:"orgs"`
	Tasks   []string `json:"tasks"`
	Partial bool     `json:"partial,omitempty"` // MaxSweepPages reached; the rest stays due
}

// AdvancePayload is one page of orgs to advance as of At.
type AdvancePayload struct {
	Version int       `json:"v"`
	At      time.Time `json:"at"`
	Orgs    []string  `json:"orgs"`
}

// AdvanceResult sums what a cycle:advance task did.
type AdvanceResult struct {
	Orgs     int             `json:"orgs"`
	Cycles   int             `json:"cycles"`
	Granted  credits.Credits `json:"granted"`
	Expired  credits.Credits `json:"expired"`
	Carried  credits.Credits `json:"carried"`
	Released int             `json:"holds_released"`
	Behind   []string        `json:"behind,omitempty"`
	Failed   []OrgFailure    `json:"failed,omitempty"`
}

// Add sums o into r: the results of several pages.
func (r *AdvanceResult) Add(o AdvanceResult) {
	r.Orgs += o.Orgs
	r.Cycles += o.Cycles
	r.Granted += o.Granted
	r.Expired += o.Expired
	r.Carried += o.Carried
	r.Released += o.Released
	r.Behind = append(r.Behind, o.Behind...)
	r.Failed = append(r.Failed, o.Failed...)
}

// OrgFailure is an org the ledger could not advance (its plan is missing
// from the catalog, say); it stays due and the other orgs advance.
type OrgFailure struct {
	OrgID string `json:"org"`
	Error string `json:"error"`
}

func (p SweepPayload) validate() error {
	switch {
	case p.Version < 1 || p.Version > SweepPayloadVersion:
		return &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, SweepPayloadVersion)}
	case p.At.IsZero():
		return &PayloadError{Field: "at", Reason: "required"}
	}
	for _, k := range append(ledger.DueKinds, ledger.DueInvoices) {
		if p.Kind == k {
			return nil
		}
	}
	return &PayloadError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q", p.Kind)}
}

func (p AdvancePayload) validate() error {
	switch {
	case p.Version < 1 || p.Version > AdvancePayloadVersion:
		return &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, AdvancePayloadVersion)}
	case p.At.IsZero():
		return &PayloadError{Field: "at", Reason: "required"}
	case len(p.Orgs) == 0 || len(p.Orgs) > ledger.MaxCyclePage:
		return &PayloadError{Field: "orgs", Reason: fmt.Sprintf("must hold 1 to %d orgs", ledger.MaxCyclePage)}
	}
	return nil
}

// SweepTaskID names the sweep of kind as of at: every scheduler that ticks
// at that instant (the Scheduler names ticks by their minute) derives the
// same id.
func SweepTaskID(kind ledger.DueKind, at time.Time) string {
	return "sweep:" + string(kind) + ":" + at.UTC().Format(time.RFC3339Nano)
}

// NewSweepTask builds the sweep task of kind as of at.
func NewSweepTask(kind ledger.DueKind, at time.Time) (*asynq.Task, error) {
	// Postgres keeps microseconds: the payload and the id name that instant.
	at = at.UTC().Truncate(time.Microsecond)
	p := SweepPayload{Version: SweepPayloadVersion, Kind: kind, At: at}
	if err := p.validate(); err != nil {
		return nil, err
	}
	data, err := encodePayload(p, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeSweep, data, asynq.Queue(QueueSweeps), asynq.TaskID(SweepTaskID(kind, at)),
		asynq.MaxRetry(10), asynq.Timeout(sweepTimeout), asynq.Retention(SweepRetention)), nil
}

// newAdvanceTask builds the task of one page; its id is derived from the
// instant and the orgs, so a retried sweep that finds the same page again
// enqueues nothing new.
func newAdvanceTask(kind ledger.DueKind, p AdvancePayload) (task *asynq.Task, id string, err error) {
	// A page of MaxCyclePage org ids fits in the batch bound.
	data, err := encodePayload(p, MaxBatchPayloadBytes)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256([]byte(strings.Join(p.Orgs, "\n")))
	id = "advance:" + string(kind) + ":" + p.At.UTC().Format(time.RFC3339Nano) + ":" + hex.EncodeToString(sum[:12])
	return asynq.NewTask(TypeAdvance, data, asynq.Queue(QueueSweeps), asynq.TaskID(id),
		asynq.MaxRetry(25), asynq.Timeout(5*time.Minute), asynq.Retention(AdvanceRetention)), id, nil
}

// newPageTask builds the task of one page of due orgs: an invoice:make task
// for the invoice sweep, a cycle:advance task for the others.
func newPageTask(kind ledger.DueKind, at time.Time, orgs []string) (*asynq.Task, string, error) {
	if kind == ledger.DueInvoices {
		return NewInvoiceTask(InvoicePayload{Version: InvoicePayloadVersion, At: at, Orgs: orgs})
	}
	return newAdvanceTask(kind, AdvancePayload{Version: AdvancePayloadVersion, At: at, Orgs: orgs})
}

// Sweep enqueues the sweep of kind as of at and returns its task id. A sweep
// already enqueued for that instant is not enqueued again.
func (c *Client) Sweep(ctx context.Context, kind ledger.DueKind, at time.Time) (string, error) {
	task, err := NewSweepTask(kind, at)
	if err != nil {
		return "", err
	}
	id := SweepTaskID(kind, at.UTC().Truncate(time.Microsecond))
	if err := c.enqueue(ctx, task, QueueSweeps, id); err != nil {
		return "", fmt.Errorf("enqueue sweep %s: %w", kind, err)
	}
	return id, nil
}

// enqueuer is what a sweep needs of the queue.
type enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// SweepHandler pages through the due orgs and fans them out.
type SweepHandler struct {
	Ledger   *ledger.Ledger
	DB       ledger.DBTX
	Queue    enqueuer // an *asynq.Client
	PageSize int      // orgs per advance task; DefaultSweepPage when 0
}

// ProcessTask reads the due orgs page by page (keyset paging: a million
// orgs never sit in memory or in one transaction) and enqueues one
// cycle:advance (or invoice:make) task per page.
func (h *SweepHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p SweepPayload
	if err := decodeStrict(t.Payload(), &p); err != nil {
		return permanent(err)
	}
	if err := p.validate(); err != nil {
		return permanent(err)
	}
	size := h.PageSize
	if size <= 0 {
		size = DefaultSweepPage
	}
	res := SweepResult{Tasks: []string{}}
	var cursor ledger.DueCursor
	for {
		page, err := h.Ledger.DueOrgs(ctx, h.DB, p.Kind, p.At, cursor, size)
		if err != nil {
			return fmt.Errorf("sweep %s: %w", p.Kind, err)
		}
		if len(page.Orgs) > 0 {
			task, id, err := newPageTask(p.Kind, p.At, page.Orgs)
			if err != nil {
				return err
			}
			if _, err := h.Queue.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
				return fmt.Errorf("sweep %s: enqueue page: %w", p.Kind, err)
			}
			res.Orgs += len(page.Orgs)
			res.Tasks = append(res.Tasks, id)
		}
		if !page.More {
			break
		}
		if len(res.Tasks) >= MaxSweepPages {
			res.Partial = true
			break
		}
		cursor = page.Next
	}
	return writeResult(t, res)
}

// AdvanceHandler performs the due work of one page of orgs.
type AdvanceHandler struct {
	Ledger *ledger.Ledger
	DB     ledger.TxBeginner
	Log    *slog.Logger
}

// ProcessTask advances the page's orgs in one transaction. An org the ledger
// cannot advance is reported and logged, and stays due; it does not fail the
// page.
func (h *AdvanceHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p AdvancePayload
	// A page may name MaxCyclePage orgs of up to 128 characters each: more
	// than a single event's bound, within a batch's.
	if err := decodeStrictN(t.Payload(), &p, MaxBatchPayloadBytes); err != nil {
		return permanent(err)
	}
	if err := p.validate(); err != nil {
		return permanent(err)
	}
	var reports []ledger.CycleReport
	err := ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) (err error) {
		reports, err = h.Ledger.AdvanceCycles(ctx, tx, p.Orgs, p.At)
		return err
	})
	if err != nil {
		return pageError("advance", len(p.Orgs), err)
	}
	res := AdvanceResult{Orgs: len(reports)}
	for _, r := range reports {
		res.Expired += r.Expired
		res.Released += r.HoldsReleased
		for _, c := range r.Cycles {
			res.Cycles++
			res.Granted += c.Granted
			res.Carried += c.Carried
		}
		if r.Behind {
			res.Behind = append(res.Behind, r.OrgID)
		}
		if r.Error != "" {
			res.Failed = append(res.Failed, OrgFailure{OrgID: r.OrgID, Error: r.Error})
			if h.Log != nil {
				h.Log.Warn("org not advanced", "org", r.OrgID, "err", r.Error)
			}
		}
	}
	return writeResult(t, res)
}

// pageError classifies the failure of a page of orgs (cycle:advance,
// invoice:make): an instant ahead of this worker's clock (the scheduler's
// clock runs fast) is retried, as time fixes it; what retrying cannot change
// is archived; the rest is retried.
func pageError(what string, orgs int, err error) error {
	var v *ledger.ValidationError
	if ledger.IsPermanent(err) && !(errors.As(err, &v) && v.Field == "at") {
		return permanent(payloadError(err))
	}
	return fmt.Errorf("%s %d orgs: %w", what, orgs, err)
}

// writeResult stores v as the task's result, for whoever waits on it.
func writeResult(t *asynq.Task, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("task result: %w", err)
	}
	if w := t.ResultWriter(); w != nil {
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("write task result: %w", err)
		}
	}
	return nil
}
