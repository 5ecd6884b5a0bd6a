package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// ErrTaskGone: the task is no longer in Redis. It either completed without a
// retention period (asynq deletes it then) or was deleted by an operator;
// the ledger, not the queue, tells which.
var ErrTaskGone = errors.New("task is no longer in the queue")

// ArchivedError is a task that failed for good: asynq archived it (a bad
// payload, an event the ledger refuses, or retries exhausted). LastErr is
// the handler's message, which names the field at fault.
type ArchivedError struct {
	TaskID  string
	Type    string
	LastErr string
}

func (e *ArchivedError) Error() string {
	return fmt.Sprintf("task %s (%s) was archived: %s", e.TaskID, e.Type, e.LastErr)
}

// Wait follows a task until it has completed (with a retention period, so
// its result is readable) and returns its info. It fails with
// *ArchivedError when the task was archived, wraps ErrTaskGone when the task
// is not (or no longer) in Redis, and returns ctx's error when ctx ends
// first. A task that is retrying is waited for.
func (c *Client) Wait(ctx context.Context, queue, taskID string) (*asynq.TaskInfo, error) {
	const maxPoll = 50 * time.Millisecond
	poll := 2 * time.Millisecond
	for {
		info, err := c.inspector.GetTaskInfo(queue, taskID)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			return nil, fmt.Errorf("task %s: %w", taskID, ErrTaskGone)
		case err != nil:
			return nil, fmt.Errorf("task %s: %w", taskID, err)
		case info.State == asynq.TaskStateCompleted:
			return info, nil
		case info.State == asynq.TaskStateArchived:
			return nil, &ArchivedError{TaskID: taskID, Type: info.Type, LastErr: info.LastErr}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for task %s (%s): %w", taskID, info.State, ctx.Err())
		case <-time.After(poll):
		}
		poll = min(2*poll, maxPoll)
	}
}
