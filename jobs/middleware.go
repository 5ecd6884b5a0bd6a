package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// Chain is the worker's middleware for mux.Use, outermost first: Logging,
// m's Middleware (left out when m is nil), then Recover, so that both see a
// handler's panic as a *PanicError.
func Chain(log *slog.Logger, m *Metrics) []asynq.MiddlewareFunc {
	mws := []asynq.MiddlewareFunc{Logging(log)}
	if m != nil {
		mws = append(mws, m.Middleware())
	}
	return append(mws, Recover())
}

// PanicError is a handler's panic, turned into an error by Recover.
type PanicError struct {
	Value any    // what the handler panicked with
	At    string // file:line of the panic, when known
	Stack []byte // the panicking goroutine's stack
}

// Error is short: it is what asynq stores as the task's last error and
// asynqmon shows. The stack goes to the log only.
func (e *PanicError) Error() string {
	if e.At == "" {
		return fmt.Sprintf("panic: %v", e.Value)
	}
	return fmt.Sprintf("panic: %v [%s]", e.Value, e.At)
}

// Recover turns a handler's panic into a *PanicError. asynq recovers panics
// too, but logs the stack through its own logger and returns an error type
// of its internal package; recovering first gives one structured log line
// (by Logging) and a count (by Metrics.Middleware) instead.
//
// The task is then retried like any transient failure, not archived: a
// panic is a bug, but it may depend on timing or on data that changes, and
// a fix deployed while the task is still retrying picks it up with no
// operator action. Retries are bounded by the task's MaxRetry, after which
// it is archived (and can be re-run from the UI).
func Recover() asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = &PanicError{Value: v, At: panicSite(), Stack: debug.Stack()}
				}
			}()
			return next.ProcessTask(ctx, t)
		})
	}
}

// panicSite is the file:line of the first frame of the panicking goroutine
// outside the runtime, called from Recover's deferred function.
func panicSite() string {
	var pcs [16]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])]) // skip Callers, panicSite, the deferred func
	for {
		f, more := frames.Next()
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return ""
		}
	}
}

// Task outcomes, as asynq will treat the attempt (see outcomeOf).
const (
	outcomeDone     = "done"
	outcomeRetried  = "retried"
	outcomeArchived = "archived"
	outcomeRevoked  = "revoked"
)

// outcomeOf is what asynq does with a task attempt that returned err. It
// follows asynq's processor (v0.26 handleFailedMessage): RevokeTask first,
// then archive on SkipRetry or when the retries are used up, else retry.
func outcomeOf(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return outcomeDone
	case errors.Is(err, asynq.RevokeTask):
		return outcomeRevoked
	case errors.Is(err, asynq.SkipRetry):
		return outcomeArchived
	}
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	if ok1 && ok2 && retried >= maxRetry {
		return outcomeArchived
	}
	return outcomeRetried
}

// Logging logs every task attempt with the keys task_type, task_id, queue,
// retry (the attempts before this one), max_retry and duration: a success at
// Debug, a failure at Warn with err and outcome (retried, archived or
// revoked), a panic at Error with its stack. It never logs the payload. It
// is the one place task errors are logged, so the server needs no
// ErrorHandler that logs them again.
func Logging(log *slog.Logger) asynq.MiddlewareFunc {
	if log == nil {
		log = slog.Default()
	}
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			logTask(ctx, log, t, time.Since(start), err)
			return err
		})
	}
}

func logTask(ctx context.Context, log *slog.Logger, t *asynq.Task, d time.Duration, err error) {
	level, msg := slog.LevelDebug, "task done"
	pe, panicked := errors.AsType[*PanicError](err)
	switch {
	case panicked:
		level, msg = slog.LevelError, "task panicked"
	case err != nil:
		level, msg = slog.LevelWarn, "task failed"
	}
	if !log.Enabled(ctx, level) {
		return
	}
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retry, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("task_type", t.Type()),
		slog.String("task_id", id),
		slog.String("queue", queue),
		slog.Int("retry", retry),
		slog.Int("max_retry", maxRetry),
		slog.Duration("duration", d),
	)
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()), slog.String("outcome", outcomeOf(ctx, err)))
	}
	if panicked {
		attrs = append(attrs, slog.String("stack", string(pe.Stack)))
	}
	log.LogAttrs(ctx, level, msg, attrs...)
}
