package jobs

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
)

// Handlers are the task handlers a worker serves, by type.
type Handlers struct {
	Usage      *UsageHandler
	UsageBatch *UsageBatchHandler
	Hold       *HoldHandler
	Sweep      *SweepHandler
	Advance    *AdvanceHandler
	Deliver    *DeliverHandler
	Recharge   *RechargeHandler
	Stripe     *StripeEventHandler
	// ReconcileSweep fans the orgs out; Reconcile checks pages of them.
	ReconcileSweep *ReconcileSweepHandler
	Reconcile      *ReconcileHandler
	Invoice        *InvoiceHandler
	InvoicePay     *InvoicePayHandler
}

// NewMux registers every handler for its exact task type. asynq's ServeMux
// matches by longest prefix, so an unregistered "usage:record_v2" would run
// "usage:record"'s handler; the exact guard archives such a task instead.
func NewMux(h Handlers) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	for typename, handler := range h.byType() {
		mux.Handle(typename, exactly(typename, handler))
	}
	return mux
}

// TaskTypes lists every task type a worker serves.
func TaskTypes() []string {
	return []string{TypeUsage, TypeUsageBatch, TypeHoldReserve, TypeHoldCapture, TypeHoldRelease, TypeSweep, TypeAdvance, TypeDeliver, TypeRecharge, TypeStripeEvent, TypeReconcile, TypeReconcilePage, TypeInvoiceMake, TypeInvoicePay}
}

// byType maps each task type to its handler; handlers left nil are not
// served, so their tasks are archived as unknown rather than panicking.
func (h Handlers) byType() map[string]asynq.Handler {
	m := make(map[string]asynq.Handler)
	if h.Usage != nil {
		m[TypeUsage] = h.Usage
	}
	if h.UsageBatch != nil {
		m[TypeUsageBatch] = h.UsageBatch
	}
	if h.Hold != nil {
		m[TypeHoldReserve], m[TypeHoldCapture], m[TypeHoldRelease] = h.Hold, h.Hold, h.Hold
	}
	if h.Sweep != nil {
		m[TypeSweep] = h.Sweep
	}
	if h.Advance != nil {
		m[TypeAdvance] = h.Advance
	}
	if h.Deliver != nil {
		m[TypeDeliver] = h.Deliver
	}
	if h.Recharge != nil {
		m[TypeRecharge] = h.Recharge
	}
	if h.Stripe != nil {
		m[TypeStripeEvent] = h.Stripe
	}
	if h.ReconcileSweep != nil {
		m[TypeReconcile] = h.ReconcileSweep
	}
	if h.Reconcile != nil {
		m[TypeReconcilePage] = h.Reconcile
	}
	if h.Invoice != nil {
		m[TypeInvoiceMake] = h.Invoice
	}
	if h.InvoicePay != nil {
		m[TypeInvoicePay] = h.InvoicePay
	}
	return m
}

func exactly(typename string, h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if t.Type() != typename {
			return permanent(fmt.Errorf("unknown task type %q (no handler registered for it)", t.Type()))
		}
		return h.ProcessTask(ctx, t)
	})
}
