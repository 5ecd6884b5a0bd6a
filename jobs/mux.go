package jobs

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
)

// Handlers are the task handlers a worker serves, by type.
type Handlers struct {
	Usage *UsageHandler
}

// NewMux registers every handler for its exact task type. asynq's ServeMux
// matches by longest prefix, so an unregistered "usage:record_v2" would run
// "usage:record"'s handler; the exact guard archives such a task instead.
func NewMux(h Handlers) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Handle(TypeUsage, exactly(TypeUsage, h.Usage))
	return mux
}

func exactly(typename string, h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if t.Type() != typename {
			return permanent(fmt.Errorf("unknown task type %q (no handler registered for it)", t.Type()))
		}
		return h.ProcessTask(ctx, t)
	})
}
