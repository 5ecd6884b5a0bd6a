package jobs

// Queues. Payments and usage are served before sweeps and reports.
const (
	QueuePayments = "payments"
	QueueUsage    = "usage"
	QueueSweeps   = "sweeps"
	QueueReports  = "reports"
)

// QueuePriorities is the asynq.Config.Queues weighting of the queues.
func QueuePriorities() map[string]int {
	return map[string]int{QueuePayments: 6, QueueUsage: 6, QueueSweeps: 2, QueueReports: 1}
}
