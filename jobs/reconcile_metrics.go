package jobs

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditd/creditd/ledger"
)

// ReconcileMetrics count what reconciliation found: payments it credited
// (a path that should have credited them did not) and mismatches it left
// to operators, by kind. Both should stay at zero; alert on any increase.
type ReconcileMetrics struct {
	repairs    *prometheus.CounterVec
	mismatches *prometheus.CounterVec
}

// NewReconcileMetrics creates the counters, every kind starting at zero, and
// registers them with reg (nil registers nothing).
func NewReconcileMetrics(reg prometheus.Registerer) (*ReconcileMetrics, error) {
	m := &ReconcileMetrics{
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditd_payments_reconcile_credited_total",
			Help: "Payments succeeded in Stripe that the ledger lacked and reconciliation credited, by kind (purchase, recharge).",
		}, []string{"kind"}),
		mismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditd_payments_reconcile_mismatches_total",
			Help: "Disagreements between Stripe and the ledger that reconciliation reported and did not repair, by kind.",
		}, []string{"kind"}),
	}
	for _, k := range []string{ledger.PaymentPurchase, ledger.PaymentRecharge} {
		m.repairs.WithLabelValues(k)
	}
	for _, k := range MismatchKinds() {
		m.mismatches.WithLabelValues(k)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.repairs, m.mismatches} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register reconciliation metrics: %w", err)
		}
	}
	return m, nil
}

func (m *ReconcileMetrics) repaired(kind string) {
	if m != nil {
		m.repairs.WithLabelValues(kind).Inc()
	}
}

func (m *ReconcileMetrics) mismatched(kind string) {
	if m != nil {
		m.mismatches.WithLabelValues(kind).Inc()
	}
}
