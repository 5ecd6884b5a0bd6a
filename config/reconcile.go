package config

import (
	"fmt"
	"strings"
	"time"
)

// EnvReconcileWindow is how far back the scheduled payment reconciliation
// looks in Stripe (a Go duration such as "72h"; default 72h).
const EnvReconcileWindow = "CREDITD_RECONCILE_WINDOW"

// Bounds of the reconciliation window: Stripe is asked for the
// PaymentIntents created in it, per customer.
const (
	DefaultReconcileWindow = 72 * time.Hour
	MaxReconcileWindow     = 31 * 24 * time.Hour
)

// ReconcileWindowFromEnv reads CREDITD_RECONCILE_WINDOW: the default when
// unset, an error naming the variable when it is not a duration between one
// minute and MaxReconcileWindow.
func ReconcileWindowFromEnv(getenv func(string) string) (time.Duration, error) {
	v := strings.TrimSpace(getenv(EnvReconcileWindow))
	if v == "" {
		return DefaultReconcileWindow, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute || d > MaxReconcileWindow {
		return 0, &EnvError{Var: EnvReconcileWindow, Reason: fmt.Sprintf("%q is not a duration between 1m and %s", v, MaxReconcileWindow)}
	}
	return d, nil
}
