package jobs_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/creditd/creditd/jobs"
)

// TestWorkerQueues: the worker's two servers serve every queue, each exactly
// once, with the weights of the single-server table, so a queue added to one
// table and not the other cannot go unserved.
func TestWorkerQueues(t *testing.T) {
	t.Parallel()
	all := []string{jobs.QueuePayments, jobs.QueueUsage, jobs.QueueNotify, jobs.QueueSweeps, jobs.QueueReports}
	usage, other, single := jobs.UsageServerQueues(), jobs.OtherServerQueues(), jobs.QueuePriorities()
	for _, q := range all {
		t.Run(q, func(t *testing.T) {
			_, inUsage := usage[q]
			w, inOther := other[q]
			switch {
			case inUsage == inOther:
				t.Fatalf("queue %q: on the usage server %v, on the other server %v; want exactly one", q, inUsage, inOther)
			case single[q] <= 0:
				t.Fatalf("queue %q has no weight in QueuePriorities", q)
			case inOther && w != single[q]:
				t.Fatalf("queue %q: weight %d on the other server, %d in QueuePriorities", q, w, single[q])
			}
		})
	}
	if got := slices.Sorted(maps.Keys(single)); !slices.Equal(got, slices.Sorted(slices.Values(all))) {
		t.Fatalf("QueuePriorities has queues %q, want %q", got, all)
	}
	if single[jobs.QueueUsage] != single[jobs.QueuePayments] {
		t.Fatalf("usage weighs %d, payments %d: a single server must serve them alike", single[jobs.QueueUsage], single[jobs.QueuePayments])
	}
}
