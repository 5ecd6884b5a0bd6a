package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/creditd/creditd/jobs/jobstest"
)

// middlewareRedisDB is the Redis database of the middleware tests (the
// package's other tests use testRedisDB).
const middlewareRedisDB = 14

// TestMiddleware runs a real asynq server with Chain on its mux over tasks
// that succeed, fail once, are refused for good and panic, and checks what
// asynq did with each, the counters and the log lines.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	const (
		queue  = "mw"
		secret = "card-4242-must-never-be-logged"
	)
	type logLine struct{ level, outcome string }
	tests := []struct {
		name                                         string
		typ                                          string
		label                                        string // task_type in the metrics; typ when empty
		maxRetry                                     int
		handle                                       func(ctx context.Context) error
		state                                        asynq.TaskState
		lastErr                                      string    // in the archived task, when set
		lines                                        []logLine // one per attempt
		processed, failed, retried, archived, panics float64
	}{
		{
			name: "succeeds", typ: "test:ok", maxRetry: 3,
			handle:    func(context.Context) error { return nil },
			state:     asynq.TaskStateCompleted,
			lines:     []logLine{{"DEBUG", ""}},
			processed: 1,
		},
		{
			name: "fails once then succeeds", typ: "test:flaky", maxRetry: 3,
			handle: func(ctx context.Context) error {
				if n, _ := asynq.GetRetryCount(ctx); n == 0 {
					return errors.New("database unavailable")
				}
				return nil
			},
			state:     asynq.TaskStateCompleted,
			lines:     []logLine{{"WARN", outcomeRetried}, {"DEBUG", ""}},
			processed: 2, failed: 1, retried: 1,
		},
		{
			name: "skip retry", typ: "test:refused", maxRetry: 3,
			handle: func(context.Context) error {
				return permanent(&PayloadError{Field: "amount", Reason: "more than 3 decimals"})
			},
			state: asynq.TaskStateArchived, lastErr: "payload: amount: more than 3 decimals",
			lines:     []logLine{{"WARN", outcomeArchived}},
			processed: 1, failed: 1, archived: 1,
		},
		{
			name: "panics once then succeeds", typ: "test:panic_once", maxRetry: 3,
			handle: func(ctx context.Context) error {
				if n, _ := asynq.GetRetryCount(ctx); n == 0 {
					panic("boom once")
				}
				return nil
			},
			state:     asynq.TaskStateCompleted,
			lines:     []logLine{{"ERROR", outcomeRetried}, {"DEBUG", ""}},
			processed: 2, failed: 1, retried: 1, panics: 1,
		},
		{
			name: "panics until archived", typ: "test:panic_always", maxRetry: 0,
			handle: func(ctx context.Context) error {
				var none []error
				n, _ := asynq.GetRetryCount(ctx)
				return none[n] // a runtime panic: index out of range
			},
			state: asynq.TaskStateArchived, lastErr: "panic: runtime error: index out of range [0] with length 0 [",
			lines:     []logLine{{"ERROR", outcomeArchived}},
			processed: 1, failed: 1, archived: 1, panics: 1,
		},
		{
			name: "type the metrics do not list", typ: "test:unlisted", label: otherType, maxRetry: 3,
			handle:    func(context.Context) error { return nil },
			state:     asynq.TaskStateCompleted,
			lines:     []logLine{{"DEBUG", ""}},
			processed: 1,
		},
	}
	var types []string
	for _, tt := range tests {
		if tt.label == "" {
			types = append(types, tt.typ)
		}
	}

	redisOpt := jobstest.Redis(t, middlewareRedisDB)
	var logs jobstest.LockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, types)
	if err != nil {
		t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	mux.Use(Chain(log, m)...)
	for _, tt := range tests {
		handle := tt.handle
		mux.HandleFunc(tt.typ, func(ctx context.Context, _ *asynq.Task) error { return handle(ctx) })
	}
	srv := asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:              4,
		Queues:                   map[string]int{queue: 1},
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return 0 },
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		Logger:                   asynqSlog{log},
		LogLevel:                 asynq.DebugLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	client := asynq.NewClient(redisOpt)
	defer client.Close()
	payload := []byte(`{"card":"` + secret + `"}`)
	for _, tt := range tests {
		_, err := client.Enqueue(asynq.NewTask(tt.typ, payload), asynq.Queue(queue), asynq.TaskID(tt.typ),
			asynq.MaxRetry(tt.maxRetry), asynq.Retention(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
	}

	// The processor records a task's state in Redis after the middleware
	// returned: once every task is in its final state, counters and logs
	// are complete.
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	infos := make(map[string]*asynq.TaskInfo)
	deadline := time.Now().Add(15 * time.Second)
	for len(infos) < len(tests) {
		for _, tt := range tests {
			info, err := insp.GetTaskInfo(queue, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if info.State == tt.state {
				infos[tt.typ] = info
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks in their final state: %d of %d\n%s", len(infos), len(tests), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	all := logs.String()
	if strings.Contains(all, secret) {
		t.Fatalf("the payload was logged:\n%s", all)
	}
	if strings.Contains(all, "recovering from panic") {
		t.Fatalf("asynq recovered a panic itself (the stack is logged twice):\n%s", all)
	}
	if n := strings.Count(all, " [running]:"); n != 2 {
		t.Fatalf("%d stacks logged, want one per panic (2):\n%s", n, all)
	}
	byTask := taskLogLines(t, all)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", problems, err)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			label := tt.typ
			if tt.label != "" {
				label = tt.label
			}
			for _, c := range []struct {
				name string
				vec  *prometheus.CounterVec
				want float64
			}{
				{"processed", m.processed, tt.processed},
				{"failed", m.failed, tt.failed},
				{"retried", m.retried, tt.retried},
				{"archived", m.archived, tt.archived},
				{"panics", m.panics, tt.panics},
			} {
				if got := testutil.ToFloat64(c.vec.WithLabelValues(label)); got != c.want {
					t.Errorf("%s{task_type=%q} = %v, want %v", c.name, label, got, c.want)
				}
			}
			if tt.lastErr != "" && !strings.HasPrefix(infos[tt.typ].LastErr, tt.lastErr) {
				t.Errorf("archived with %q, want it to start with %q", infos[tt.typ].LastErr, tt.lastErr)
			}

			lines := byTask[tt.typ]
			if len(lines) != len(tt.lines) {
				t.Fatalf("%d log lines, want %d: %v", len(lines), len(tt.lines), lines)
			}
			for i, want := range tt.lines {
				l := lines[i]
				if l["level"] != want.level || l["task_type"] != tt.typ || l["queue"] != queue || l["retry"] != float64(i) {
					t.Errorf("attempt %d logged %v, want level %s, task_type %s, queue %s, retry %d", i, l, want.level, tt.typ, queue, i)
				}
				if _, ok := l["duration"].(float64); !ok {
					t.Errorf("attempt %d: no duration: %v", i, l)
				}
				if got, _ := l["outcome"].(string); got != want.outcome {
					t.Errorf("attempt %d: outcome %q, want %q", i, got, want.outcome)
				}
				if errMsg, _ := l["err"].(string); (want.outcome != "") != (errMsg != "") {
					t.Errorf("attempt %d: err %q with outcome %q", i, errMsg, want.outcome)
				}
				stack, _ := l["stack"].(string)
				if panicked := want.level == "ERROR"; panicked != strings.Contains(stack, "middleware_test.go") {
					t.Errorf("attempt %d: stack %q, want one naming the panicking test handler: %v", i, stack, panicked)
				}
			}
		})
	}
}

// taskLogLines parses JSON log lines and groups those of tasks by task_id.
func taskLogLines(t *testing.T, logs string) map[string][]map[string]any {
	t.Helper()
	out := make(map[string][]map[string]any)
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if id, ok := l["task_id"].(string); ok {
			out[id] = append(out[id], l)
		}
	}
	return out
}

// TestOutcomeOf checks the error rules; the retry counts asynq puts in a
// handler's context (retries used up) are covered by TestMiddleware.
func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, outcomeDone},
		{"transient", errors.New("connection refused"), outcomeRetried},
		{"skip retry", fmt.Errorf("bad: %w", asynq.SkipRetry), outcomeArchived},
		{"revoke", fmt.Errorf("gone: %w", asynq.RevokeTask), outcomeRevoked},
		{"revoke wins over skip retry", fmt.Errorf("%w: %w", asynq.SkipRetry, asynq.RevokeTask), outcomeRevoked},
		{"panic", &PanicError{Value: "boom"}, outcomeRetried},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := outcomeOf(context.Background(), tt.err); got != tt.want {
				t.Fatalf("outcomeOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// asynqSlog sends asynq's own log lines to slog.
type asynqSlog struct{ log *slog.Logger }

func (l asynqSlog) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqSlog) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqSlog) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqSlog) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqSlog) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
