package jobs

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/creditd/creditd/notify"
)

// Queues. Payments and usage are served before alert deliveries, and those
// before sweeps and reports.
const (
	QueuePayments = "payments"
	QueueUsage    = "usage"
	QueueNotify   = "notify"
	QueueSweeps   = "sweeps"
	QueueReports  = "reports"
)

// QueuePriorities is the asynq.Config.Queues weighting of every queue, for
// one server that serves them all: usage weighs as much as payments.
func QueuePriorities() map[string]int {
	all := OtherServerQueues()
	all[QueueUsage] = all[QueuePayments]
	return all
}

// UsageServerQueues and OtherServerQueues split the queues between the two
// asynq servers of creditd worker. Usage (events, batches, holds) has a
// server of its own, for two reasons measured with `creditd load` (README
// "Performance"). asynq's Dequeue tries a server's queues one at a time, a
// Redis script call each, so next to four idle queues every usage task cost
// about two more round trips. And usage handlers mostly wait for the group
// commit, so usage wants many more tasks in flight than sweeps or payments
// should get. Among the other queues, payments come before alert
// deliveries, and those before sweeps and reports.
func UsageServerQueues() map[string]int { return map[string]int{QueueUsage: 1} }

// OtherServerQueues: see UsageServerQueues.
func OtherServerQueues() map[string]int {
	return map[string]int{QueuePayments: 6, QueueNotify: 3, QueueSweeps: 2, QueueReports: 1}
}

// RetryDelay is the backoff between attempts of a task that failed with a
// transient error (or whose worker died): 1 s, doubling, capped at 10
// minutes, with up to 25% jitter so a burst of failures does not come back
// at once. asynq's default starts near 15 s and grows past a day, too slow
// for usage that should appear in balances promptly. A receiver's
// Retry-After (a webhook's 429 or 503) is honoured when it asks for longer.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var de *notify.DeliveryError
	if errors.As(err, &de) && de.RetryAfter > time.Second<<min(n, 10) {
		return de.RetryAfter
	}
	d := time.Second << min(n, 10)
	d = min(d, 10*time.Minute)
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}
