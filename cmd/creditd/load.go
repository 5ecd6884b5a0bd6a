package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// Bounds of `creditd load`: a run always ends by itself.
const (
	maxLoadEvents    = 100_000_000
	maxLoadOrgs      = 1_000_000
	maxLoadProducers = 256

	// loadEventCost is what every event of a run costs (0.001 credit). One
	// fixed cost lets the run count the events applied from the orgs' usage
	// counters (one row per org) instead of counting millions of events.
	loadEventCost = credits.Credits(1)

	// loadStall: a run that sees nothing applied this long after its first
	// enqueue has no worker.
	loadStall = 30 * time.Second

	// Orgs are created and granted in transactions of loadOrgChunk orgs,
	// loadOrgParallel at a time.
	loadOrgChunk    = 500
	loadOrgParallel = 4

	// noopConcurrency is `creditd worker`'s default --usage-concurrency, so
	// the baseline is asynq as the worker runs usage.
	noopConcurrency = defaultUsageConcurrency
	typeLoadNoop    = "load:noop"

	progressEvery = 200 * time.Millisecond
)

var orgPrefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// loadConfig is what a run does, from the flags.
type loadConfig struct {
	events, orgs, batch, producers, rate int
	mode, group, prefix                  string
	grant                                credits.Credits
	noop, progress                       bool
	workerPID                            int
	alerts                               string // none, default or crossing
}

// loadSummary is `creditd load --json`. Rates are events (or tasks) per
// second; durations are seconds, latencies milliseconds.
type loadSummary struct {
	Mode      string `json:"mode"`
	Events    int    `json:"events"`
	Orgs      int    `json:"orgs"`
	OrgPrefix string `json:"org_prefix"`
	BatchSize int    `json:"batch_size,omitempty"`
	Group     string `json:"group,omitempty"`
	Tasks     int    `json:"tasks"`
	Producers int    `json:"producers"`
	Rate      int    `json:"rate"` // events/s asked for; 0 = full speed
	Alerts    string `json:"alerts"`

	SetupSeconds   float64   `json:"setup_seconds"`
	StartedAt      time.Time `json:"started_at"`  // the first enqueue
	FinishedAt     time.Time `json:"finished_at"` // when every event was seen applied
	EnqueueSeconds float64   `json:"enqueue_seconds"`
	EnqueueRate    float64   `json:"enqueue_rate"`
	// Seconds runs from the first enqueue until the run saw every event
	// applied (it polls at most every 250 ms); LedgerSeconds until the last
	// event's recorded_at.
	Seconds         float64 `json:"seconds"`
	LedgerSeconds   float64 `json:"ledger_seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	Applied         int64   `json:"applied"`
	Rejected        int64   `json:"rejected"`
	LatencyMS       struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`

	Noop          *noopSummary `json:"noop_baseline,omitempty"`
	VsNoopPercent *float64     `json:"vs_noop_percent,omitempty"`
	WorkerRSS     *rssSummary  `json:"worker_rss,omitempty"`
}

// noopSummary is asynq's own throughput in the same run: the same number of
// tasks with payloads of the same size, through a no-op handler.
type noopSummary struct {
	Queue          string    `json:"queue"`
	StartedAt      time.Time `json:"started_at"`
	Tasks          int       `json:"tasks"`
	Concurrency    int       `json:"concurrency"`
	Seconds        float64   `json:"seconds"`
	TasksPerSecond float64   `json:"tasks_per_second"`
	// EventsPerSecond is TasksPerSecond times the run's events per task.
	EventsPerSecond float64 `json:"events_per_second"`
}

// rssSummary is the worker's resident memory during the run, in KiB.
type rssSummary struct {
	PID      int   `json:"pid"`
	StartKiB int64 `json:"start_kib"`
	PeakKiB  int64 `json:"peak_kib"`
	EndKiB   int64 `json:"end_kib"`
	Samples  int   `json:"samples"`
}

func runLoad(a *app, c *command, args []string) error {
	cpuProfile, args := takeHiddenFlag(args, "cpuprofile")
	fs := newFlagSet(c)
	events := fs.Int("events", 10000, "usage events to record")
	orgs := fs.Int("orgs", 100, "orgs to spread them over (created for the run)")
	mode := fs.String("mode", "single", "single: one event per task (Client.RecordUsage); batch: --batch-size events per task (Client.RecordUsageBatch);\n"+
		"cycles: a month boundary (expiry, rollover, allocation) for --orgs orgs through the sweeps, timed;\n"+
		"invoices: last month's invoices of --orgs orgs with --events-per-org usage events each, through the invoice sweep, timed")
	perOrg := fs.Int("events-per-org", 100, "invoices mode: usage events per org in the month invoiced")
	plan := fs.String("plan", "professional", "cycles mode: the orgs' plan")
	batch := fs.Int("batch-size", jobs.MaxBatchEvents, "events per task in batch mode")
	group := fs.String("group", "org", "batch mode: org (each batch holds the events of as few orgs as possible) or spread (events round-robin over the orgs)")
	rate := fs.Int("rate", 0, "events per second to enqueue; 0 = as fast as possible")
	producers := fs.Int("producers", 8, "goroutines enqueueing")
	prefix := fs.String("org-prefix", "", "prefix of the run's org ids (default load-<random>, so runs never collide)")
	grant := fs.String("grant", "", "credits granted to each org (default: twice what its events cost, at least 1)")
	noop := fs.Bool("noop-baseline", false, "first measure asynq itself: the same tasks through a no-op handler on a queue of this run")
	workerPID := fs.Int("worker-pid", 0, "sample this process's resident memory (the worker's) during the run")
	progress := fs.Bool("progress", false, "show a progress line on stderr even when it is not a terminal")
	allowRemote := fs.Bool("allow-remote", false, "allow a Postgres or Redis that is not on this machine")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long (setup and baseline included)")
	alerts := fs.String("alerts", "default", "the orgs' alert rules: default (the catalog's six, which this load never crosses), none, or crossing\n"+
		"(no defaults, and three below rules at 7/8, 6/8 and 5/8 of the grant, so every org fires all three during the run)")
	asJSON := jsonFlag(fs)
	if _, err := a.parse(c, fs, args); err != nil {
		return err
	}
	cycles, invoices := *mode == "cycles", *mode == "invoices"
	if cycles || invoices {
		// Events, rates and batches do not apply: the orgs are the load.
		*events, *batch = max(*events, *orgs), 1
		*mode = "single"
	}
	if invoices && *perOrg < 1 {
		return invalid("events-per-org", "must be at least 1")
	}
	cfg := loadConfig{events: *events, orgs: *orgs, batch: *batch, producers: *producers, rate: *rate,
		mode: *mode, group: *group, prefix: *prefix, noop: *noop, workerPID: *workerPID,
		progress: *progress || isTerminal(a.stderr), alerts: *alerts}
	switch *alerts {
	case "default", "none", "crossing":
	default:
		return invalid("alerts", "must be default, none or crossing")
	}
	if err := cfg.validate(fs, *grant); err != nil {
		return err
	}
	if *timeout <= 0 {
		return invalid("timeout", "must be positive")
	}
	redisOpt, err := redisFromEnv(a.getenv)
	if err != nil {
		return err
	}
	if !*allowRemote {
		if err := requireLocal(a.getenv(config.EnvDatabaseURL), redisOpt); err != nil {
			return err
		}
	}
	if cfg.workerPID != 0 {
		if _, err := readRSS(cfg.workerPID); err != nil {
			return invalid("worker-pid", "%v", err)
		}
	}
	stopProfile, err := startCPUProfile(cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if err := a.connect(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(a.ctx, *timeout)
	defer cancel()
	r := &loadRun{a: a, cfg: cfg, redis: redisOpt}
	if cycles {
		if _, ok := a.ledger.Catalog().Plan(*plan); !ok {
			return invalid("plan", "unknown plan %q", *plan)
		}
		sum, err := r.loadCycles(ctx, *plan)
		if err != nil {
			return err
		}
		if *asJSON {
			return a.printJSON(sum)
		}
		a.printf("cycles: %d orgs on %s, month boundary through the queue in %.2fs = %.0f orgs/s (setup %.1fs); %s granted, %s carried, %s expired\n",
			sum.Orgs, sum.Plan, sum.Seconds, sum.OrgsPerSecond, sum.SetupSeconds, sum.Cycle.Granted, sum.Cycle.Carried, sum.Cycle.Expired)
		if sum.WorkerRSS != nil {
			a.printf("worker RSS: start %d KiB, peak %d KiB, end %d KiB\n", sum.WorkerRSS.StartKiB, sum.WorkerRSS.PeakKiB, sum.WorkerRSS.EndKiB)
		}
		return nil
	}
	if invoices {
		sum, err := r.loadInvoices(ctx, *perOrg)
		if err != nil {
			return err
		}
		if *asJSON {
			return a.printJSON(sum)
		}
		a.printf("invoices: %d orgs with %d events each in %s, invoiced through the queue in %.2fs = %.0f invoices/s (setup %.1fs)\n",
			sum.Orgs, sum.EventsPerOrg, sum.Period, sum.Seconds, sum.InvoicesPerSecond, sum.SetupSeconds)
		if sum.WorkerRSS != nil {
			a.printf("worker RSS: start %d KiB, peak %d KiB, end %d KiB\n", sum.WorkerRSS.StartKiB, sum.WorkerRSS.PeakKiB, sum.WorkerRSS.EndKiB)
		}
		return nil
	}
	sum, err := r.run(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && a.ctx.Err() == nil {
			return fmt.Errorf("timed out after %s: %d of %d events applied (what is queued stays queued; a worker applies it)",
				*timeout, r.applied.Load(), cfg.events)
		}
		return err
	}
	if *asJSON {
		return a.printJSON(sum)
	}
	a.printLoad(sum)
	return nil
}

func (c *loadConfig) validate(fs *flag.FlagSet, grant string) error {
	switch {
	case c.events < 1 || c.events > maxLoadEvents:
		return invalid("events", "must be between 1 and %d", maxLoadEvents)
	case c.orgs < 1 || c.orgs > maxLoadOrgs:
		return invalid("orgs", "must be between 1 and %d", maxLoadOrgs)
	case c.orgs > c.events:
		return invalid("orgs", "more orgs (%d) than events (%d)", c.orgs, c.events)
	case c.producers < 1 || c.producers > maxLoadProducers:
		return invalid("producers", "must be between 1 and %d", maxLoadProducers)
	case c.rate < 0:
		return invalid("rate", "must not be negative")
	case c.workerPID < 0:
		return invalid("worker-pid", "must be a process id")
	}
	switch c.mode {
	case "single":
		if isSet(fs, "batch-size") || isSet(fs, "group") {
			return invalid("mode", "--batch-size and --group are for --mode batch")
		}
		c.batch, c.group = 1, ""
	case "batch":
		if c.batch < 1 || c.batch > jobs.MaxBatchEvents {
			return invalid("batch-size", "must be between 1 and %d", jobs.MaxBatchEvents)
		}
		if c.group != "org" && c.group != "spread" {
			return invalid("group", "must be org or spread, not %q", c.group)
		}
	default:
		return invalid("mode", "must be single or batch, not %q", c.mode)
	}
	if c.prefix == "" {
		c.prefix = "load-" + randomHex(4)
	}
	if !orgPrefixRE.MatchString(c.prefix) {
		return invalid("org-prefix", "%q: letters, digits and . _ : - (at most 100), starting with a letter or digit", c.prefix)
	}
	perOrg := int64((c.events + c.orgs - 1) / c.orgs)
	need, _ := loadEventCost.MulInt(perOrg)
	if grant == "" {
		c.grant = max(2*need, credits.FromCredits(1))
		return nil
	}
	g, err := parsePositive("grant", grant)
	if err != nil {
		return err
	}
	if g < need {
		return invalid("grant", "%s credits do not cover an org's %d events of %s credits", g, perOrg, loadEventCost)
	}
	c.grant = g
	return nil
}

// requireLocal refuses to send load anywhere but this machine.
func requireLocal(dsn string, redisOpt asynq.RedisConnOpt) error {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return &config.EnvError{Var: config.EnvDatabaseURL, Reason: "not a valid postgres connection string"}
	}
	hosts := []string{pc.ConnConfig.Host}
	for _, f := range pc.ConnConfig.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	for _, h := range hosts {
		if !isLocalHost(h) {
			return invalid("allow-remote", "DATABASE_URL names host %q, not this machine; load goes only to a local Postgres without --allow-remote", h)
		}
	}
	ro, ok := redisOpt.(asynq.RedisClientOpt)
	if !ok {
		return invalid("allow-remote", "REDIS_URL is not a single local Redis; load goes only to a local Redis without --allow-remote")
	}
	host, _, err := net.SplitHostPort(ro.Addr)
	if err != nil {
		host = ro.Addr
	}
	if ro.Network != "unix" && !isLocalHost(host) {
		return invalid("allow-remote", "REDIS_URL names host %q, not this machine; load goes only to a local Redis without --allow-remote", host)
	}
	return nil
}

func isLocalHost(h string) bool {
	if strings.HasPrefix(h, "/") || h == "localhost" {
		return true // a unix socket
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loadRun is one run of `creditd load`.
type loadRun struct {
	a     *app
	cfg   loadConfig
	redis asynq.RedisConnOpt
	ids   []string

	enqueued atomic.Int64 // events
	applied  atomic.Int64 // events, as last polled
}

func (r *loadRun) tasks() int { return (r.cfg.events + r.cfg.batch - 1) / r.cfg.batch }

// orgOf is the org of event j. One event per task, and batches grouped
// "spread", go round-robin over the orgs; batches grouped "org" take the
// orgs' events in turn, so a batch holds as few orgs as the counts allow and
// the batches in flight at once touch different orgs.
func (r *loadRun) orgOf(j int) string {
	if r.cfg.group == "org" {
		return r.ids[int(int64(j)*int64(r.cfg.orgs)/int64(r.cfg.events))]
	}
	return r.ids[j%r.cfg.orgs]
}

// payloads returns task t's events, all occurring at at.
func (r *loadRun) payloads(t int, at time.Time) []jobs.UsagePayload {
	first, end := t*r.cfg.batch, min((t+1)*r.cfg.batch, r.cfg.events)
	amount := loadEventCost.String()
	at = at.UTC()
	out := make([]jobs.UsagePayload, 0, end-first)
	for j := first; j < end; j++ {
		out = append(out, jobs.UsagePayload{Version: jobs.UsagePayloadVersion, OrgID: r.orgOf(j),
			EventID: "e" + strconv.Itoa(j), Amount: &amount, OccurredAt: &at})
	}
	return out
}

func (r *loadRun) run(ctx context.Context) (*loadSummary, error) {
	cfg := r.cfg
	sum := &loadSummary{Mode: cfg.mode, Events: cfg.events, Orgs: cfg.orgs, OrgPrefix: cfg.prefix, Tasks: r.tasks(),
		Producers: cfg.producers, Rate: cfg.rate, Alerts: cfg.alerts}
	if cfg.mode == "batch" {
		sum.BatchSize, sum.Group = cfg.batch, cfg.group
	}
	r.ids = make([]string, cfg.orgs)
	width := len(strconv.Itoa(cfg.orgs - 1))
	for i := range r.ids {
		r.ids[i] = fmt.Sprintf("%s-%0*d", cfg.prefix, width, i)
	}

	r.status("creating %d orgs %s-* with %s credits each", cfg.orgs, cfg.prefix, cfg.grant)
	start := time.Now()
	if err := r.createOrgs(ctx); err != nil {
		return nil, err
	}
	sum.SetupSeconds = time.Since(start).Seconds()
	// Events of an earlier run under the same prefix would be replays, seen
	// as applied before this run applied anything.
	if used, err := r.a.ledger.CreditsUsed(ctx, r.a.pool, r.ids); err != nil {
		return nil, err
	} else if used != 0 {
		return nil, invalid("org-prefix", "the orgs %s-* already have usage (an earlier run?); use another prefix", cfg.prefix)
	}

	if cfg.noop {
		n, err := r.noopBaseline(ctx)
		if err != nil {
			return nil, err
		}
		sum.Noop = n
	}

	var rss *rssSampler
	if cfg.workerPID != 0 {
		rss = startRSS(cfg.workerPID)
	}
	client := jobs.NewClient(r.redis)
	defer client.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	start = time.Now()
	enqDone := make(chan enqueueResult, 1)
	go func() {
		last, err := r.produce(runCtx, start, cfg.rate, func(ctx context.Context, t int) (int, error) {
			evs := r.payloads(t, time.Now())
			if cfg.mode == "single" {
				return 1, client.EnqueueUsage(ctx, evs[0])
			}
			return len(evs), client.RecordUsageBatch(ctx, evs)
		})
		if err != nil {
			stop() // the waiter gives up too
		}
		enqDone <- enqueueResult{last, err}
	}()
	bar := r.startProgress("load", start, int64(cfg.events), &r.enqueued, &r.applied)
	end, waitErr := r.waitApplied(runCtx, start)
	if waitErr != nil {
		stop() // the producers give up too
	}
	bar.stop()
	enq := <-enqDone
	if rss != nil {
		sum.WorkerRSS = rss.stop()
	}
	switch {
	case enq.err != nil && !errors.Is(enq.err, context.Canceled):
		return nil, enq.err // enqueueing failed first, which stopped the wait
	case waitErr != nil:
		return nil, waitErr
	case enq.err != nil:
		return nil, enq.err
	}
	sum.EnqueueSeconds = enq.last.Sub(start).Seconds()
	sum.EnqueueRate = float64(cfg.events) / sum.EnqueueSeconds
	sum.StartedAt, sum.FinishedAt = start.UTC(), end.UTC()
	sum.Seconds = end.Sub(start).Seconds()
	sum.EventsPerSecond = float64(cfg.events) / sum.Seconds

	st, err := r.a.ledger.UsageStats(ctx, r.a.pool, r.ids)
	if err != nil {
		return nil, err
	}
	sum.Applied, sum.Rejected = st.Applied, st.Rejected
	if !st.LastRecorded.IsZero() {
		sum.LedgerSeconds = st.LastRecorded.Sub(start).Seconds()
	}
	sum.LatencyMS.P50, sum.LatencyMS.P99, sum.LatencyMS.Max = ms(st.LatencyP50), ms(st.LatencyP99), ms(st.LatencyMax)
	if sum.Noop != nil {
		pct := 100 * sum.EventsPerSecond / sum.Noop.EventsPerSecond
		sum.VsNoopPercent = &pct
	}
	return sum, nil
}

type enqueueResult struct {
	last time.Time // when the last enqueue returned
	err  error
}

// produce runs the producers over every task of the run: enqueue(t) enqueues
// task t and returns its number of events. With a rate (events/s), task t is
// not enqueued before its first event is due.
func (r *loadRun) produce(ctx context.Context, start time.Time, rate int, enqueue func(context.Context, int) (int, error)) (time.Time, error) {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		last     time.Time
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tasks := int64(r.tasks())
	for p := 0; p < r.cfg.producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine time.Time
			for {
				t := next.Add(1) - 1
				if t >= tasks || ctx.Err() != nil {
					break
				}
				if rate > 0 {
					due := start.Add(time.Duration(t * int64(r.cfg.batch) * int64(time.Second) / int64(rate)))
					if err := sleepUntil(ctx, due); err != nil {
						break
					}
				}
				n, err := enqueue(ctx, int(t))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				r.enqueued.Add(int64(n))
				mine = time.Now()
			}
			mu.Lock()
			if mine.After(last) {
				last = mine
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return last, firstErr
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitApplied polls the orgs' usage counters until every event is applied and
// returns when it saw that. Polls come at most every 250 ms, and take at most
// a tenth of the time.
func (r *loadRun) waitApplied(ctx context.Context, start time.Time) (time.Time, error) {
	want := int64(r.cfg.events)
	for {
		q := time.Now()
		used, err := r.a.ledger.CreditsUsed(ctx, r.a.pool, r.ids)
		if err != nil {
			if ctx.Err() != nil {
				return time.Time{}, ctx.Err()
			}
			return time.Time{}, err
		}
		took := time.Since(q)
		n := int64(used / loadEventCost)
		r.applied.Store(n)
		if n >= want {
			return time.Now(), nil
		}
		if n == 0 && r.enqueued.Load() > 0 && time.Since(start) > loadStall {
			return time.Time{}, fmt.Errorf("no usage event applied %s after the first was enqueued: is a worker running? "+
				"(creditd worker or creditd all, with the same DATABASE_URL and REDIS_URL; if one is, its log says why its tasks fail). "+
				"The %d tasks enqueued stay queued", loadStall, r.enqueued.Load()/int64(r.cfg.batch))
		}
		if err := sleepUntil(ctx, time.Now().Add(min(max(10*took, 50*time.Millisecond), 250*time.Millisecond))); err != nil {
			return time.Time{}, err
		}
	}
}

// createOrgs creates the run's orgs on plan standard, each with a purchase
// grant, in transactions of loadOrgChunk orgs.
func (r *loadRun) createOrgs(ctx context.Context) error {
	chunks := make(chan []string)
	errs := make(chan error, loadOrgParallel)
	for i := 0; i < loadOrgParallel; i++ {
		go func() {
			var err error
			for ids := range chunks {
				if err == nil {
					err = r.createChunk(ctx, ids)
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < len(r.ids); i += loadOrgChunk {
		chunks <- r.ids[i:min(i+loadOrgChunk, len(r.ids))]
	}
	close(chunks)
	var all []error
	for i := 0; i < loadOrgParallel; i++ {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		return fmt.Errorf("create orgs: %w", err)
	}
	return nil
}

func (r *loadRun) createChunk(ctx context.Context, ids []string) error {
	l := r.a.ledger
	return ledger.WithRetry(ctx, r.a.pool, func(tx pgx.Tx) error {
		for _, id := range ids {
			if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: id, Plan: "standard", NoDefaultAlerts: r.cfg.alerts != "default"}); err != nil {
				return err
			}
			if r.cfg.alerts == "crossing" {
				for _, eighths := range []int64{7, 6, 5} {
					level := credits.Credits(int64(r.cfg.grant) * eighths / 8)
					if level <= 0 {
						continue
					}
					rule := ledger.NewAlertRule{OrgID: id, Kind: ledger.AlertBelow, Amount: &level}
					if _, _, err := l.AddAlertRule(ctx, tx, rule); err != nil {
						return err
					}
				}
			}
			if _, err := l.Grant(ctx, tx, ledger.Grant{OrgID: id, Amount: r.cfg.grant, Source: ledger.SourcePurchase, Key: "load"}); err != nil {
				return err
			}
		}
		return nil
	})
}

// noopBaseline measures asynq alone in this run: an in-process server with
// the worker's usage concurrency and a no-op handler drains the run's number of
// tasks, with payloads like the run's, from a queue of its own, enqueued by
// the same producers. The queue is deleted afterwards.
func (r *loadRun) noopBaseline(ctx context.Context) (*noopSummary, error) {
	queue := "load-noop-" + randomHex(6)
	tasks := r.tasks()
	var processed atomic.Int64
	finished := make(chan struct{})
	// The worker's own pool sizing, so that the baseline is asynq as the
	// worker runs it.
	srv := asynq.NewServer(withRedisPool(r.redis, noopConcurrency), asynq.Config{
		Concurrency: noopConcurrency,
		Queues:      map[string]int{queue: 1},
		Logger:      asynqLogger{r.a.log},
		LogLevel:    asynq.WarnLevel,
	})
	err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if processed.Add(1) == int64(tasks) {
			close(finished)
		}
		return nil
	}))
	if err != nil {
		return nil, fmt.Errorf("no-op baseline: start asynq server: %w", err)
	}
	client := asynq.NewClient(r.redis)
	defer func() {
		client.Close()
		srv.Shutdown()
		r.deleteQueue(queue)
	}()

	var enqueuedTasks atomic.Int64
	start := time.Now()
	bar := r.startProgress("no-op asynq", start, int64(tasks), &enqueuedTasks, &processed)
	// At full speed whatever the run's --rate: this measures asynq's capacity.
	_, err = r.produce(ctx, start, 0, func(ctx context.Context, t int) (int, error) {
		evs := r.payloads(t, time.Now())
		var data []byte
		var err error
		if r.cfg.mode == "single" {
			data, err = json.Marshal(evs[0])
		} else {
			data, err = json.Marshal(jobs.UsageBatchPayload{Version: jobs.UsageBatchPayloadVersion, Events: evs})
		}
		if err != nil {
			return 0, err
		}
		_, err = client.EnqueueContext(ctx, asynq.NewTask(typeLoadNoop, data, asynq.Queue(queue),
			asynq.TaskID("noop:"+strconv.Itoa(t)), asynq.MaxRetry(0), asynq.Timeout(time.Minute)))
		enqueuedTasks.Add(1)
		return 0, err
	})
	if err != nil {
		bar.stop()
		return nil, fmt.Errorf("no-op baseline: %w", err)
	}
	select {
	case <-finished:
	case <-ctx.Done():
		bar.stop()
		return nil, fmt.Errorf("no-op baseline: %d of %d tasks processed: %w", processed.Load(), tasks, ctx.Err())
	}
	took := time.Since(start)
	bar.stop()
	perSec := float64(tasks) / took.Seconds()
	return &noopSummary{Queue: queue, StartedAt: start.UTC(), Tasks: tasks, Concurrency: noopConcurrency, Seconds: took.Seconds(),
		TasksPerSecond: perSec, EventsPerSecond: perSec * float64(r.cfg.events) / float64(tasks)}, nil
}

// deleteQueue removes the baseline's queue and the statistics asynq keeps
// for it. The queue's name is unique to the run, so nothing else matches.
func (r *loadRun) deleteQueue(queue string) {
	insp := asynq.NewInspector(r.redis)
	defer insp.Close()
	if err := insp.DeleteQueue(queue, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		r.a.log.Warn("no-op baseline: delete queue", "queue", queue, "err", err)
	}
	rdb, ok := r.redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, "asynq:{"+queue+"}:*", 100).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		r.a.log.Warn("no-op baseline: find queue statistics", "queue", queue, "err", err)
		return
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			r.a.log.Warn("no-op baseline: delete queue statistics", "queue", queue, "err", err)
		}
	}
}

// status prints a line about what the run does, when progress is shown.
func (r *loadRun) status(format string, args ...any) {
	if r.cfg.progress {
		fmt.Fprintf(r.a.stderr, "creditd load: "+format+"\n", args...)
	}
}

// progress is the one-line progress bar on stderr, redrawn with \r at most
// five times a second.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func (r *loadRun) startProgress(label string, start time.Time, total int64, enqueued, applied *atomic.Int64) *progress {
	p := &progress{done: make(chan struct{})}
	if !r.cfg.progress {
		return p
	}
	w := r.a.stderr
	draw := func(final bool) {
		n, e := applied.Load(), enqueued.Load()
		el := time.Since(start)
		const width = 30
		filled := int(min(n, total) * width / total)
		perSec := 0.0
		if el > 0 {
			perSec = float64(n) / el.Seconds()
		}
		line := fmt.Sprintf("\r%s [%s%s] %3d%%  %s/%s done  %s enqueued  %s/s  %s", label,
			strings.Repeat("=", filled), strings.Repeat(" ", width-filled), min(n, total)*100/total,
			thousands(n), thousands(total), thousands(e), thousands(int64(perSec)), el.Truncate(100*time.Millisecond))
		fmt.Fprintf(w, "%-100s", line)
		if final {
			fmt.Fprintln(w)
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw(false)
			case <-p.done:
				draw(true)
				return
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// rssSampler samples a process's VmRSS five times a second.
type rssSampler struct {
	pid  int
	done chan struct{}
	out  chan *rssSummary
}

func startRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, done: make(chan struct{}), out: make(chan *rssSummary, 1)}
	go func() {
		sum := &rssSummary{PID: pid}
		sample := func() {
			kib, err := readRSS(pid)
			if err != nil {
				return // the process may have exited; keep what was seen
			}
			if sum.Samples == 0 {
				sum.StartKiB = kib
			}
			sum.Samples++
			sum.PeakKiB, sum.EndKiB = max(sum.PeakKiB, kib), kib
		}
		sample()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sample()
			case <-s.done:
				sample()
				s.out <- sum
				return
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() *rssSummary {
	close(s.done)
	return <-s.out
}

// readRSS reads VmRSS (KiB) from /proc/PID/status.
func readRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("process %d: no VmRSS in /proc/%d/status", pid, pid)
}

func (a *app) printLoad(s *loadSummary) {
	tw := a.table()
	shape := fmt.Sprintf("%s events over %s orgs (%s-*), one per task", thousands(int64(s.Events)), thousands(int64(s.Orgs)), s.OrgPrefix)
	if s.Mode == "batch" {
		shape = fmt.Sprintf("%s events over %s orgs (%s-*) in %s tasks of up to %d (grouped by %s)", thousands(int64(s.Events)),
			thousands(int64(s.Orgs)), s.OrgPrefix, thousands(int64(s.Tasks)), s.BatchSize, s.Group)
	}
	speed := "full speed"
	if s.Rate > 0 {
		speed = thousands(int64(s.Rate)) + " events/s"
	}
	fmt.Fprintf(tw, "load\t%s, %d producers, %s, alert rules: %s\n", shape, s.Producers, speed, s.Alerts)
	fmt.Fprintf(tw, "setup\t%.1f s\n", s.SetupSeconds)
	if n := s.Noop; n != nil {
		fmt.Fprintf(tw, "no-op asynq\t%s tasks/s (%s tasks in %.2f s, concurrency %d; = %s events/s)\n", thousands(int64(n.TasksPerSecond)),
			thousands(int64(n.Tasks)), n.Seconds, n.Concurrency, thousands(int64(n.EventsPerSecond)))
	}
	fmt.Fprintf(tw, "enqueued\t%s events/s (%.2f s)\n", thousands(int64(s.EnqueueRate)), s.EnqueueSeconds)
	vs := ""
	if s.VsNoopPercent != nil {
		vs = fmt.Sprintf(", %.0f%% of no-op asynq", *s.VsNoopPercent)
	}
	fmt.Fprintf(tw, "applied\t%s events/s end to end (%s applied, %s rejected in %.2f s%s)\n", thousands(int64(s.EventsPerSecond)),
		thousands(s.Applied), thousands(s.Rejected), s.Seconds, vs)
	fmt.Fprintf(tw, "latency\tp50 %s  p99 %s  max %s (enqueue → applied)\n", fmtMS(s.LatencyMS.P50), fmtMS(s.LatencyMS.P99), fmtMS(s.LatencyMS.Max))
	if m := s.WorkerRSS; m != nil {
		fmt.Fprintf(tw, "worker RSS\tstart %.1f MiB, peak %.1f MiB, end %.1f MiB (pid %d, %d samples)\n",
			float64(m.StartKiB)/1024, float64(m.PeakKiB)/1024, float64(m.EndKiB)/1024, m.PID, m.Samples)
	}
	tw.Flush()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fmtMS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2f s", v/1000)
	}
	return fmt.Sprintf("%.1f ms", v)
}

// thousands formats n with thousands separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startCPUProfile writes a CPU profile of the process to path until the
// returned stop is called; with an empty path it does nothing. It serves the
// hidden --cpuprofile flags, which show where a load run's time goes.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// takeHiddenFlag removes --name VALUE (or --name=VALUE) from args: flags for
// development that the help does not list.
func takeHiddenFlag(args []string, name string) (string, []string) {
	var value string
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		switch {
		case args[i] == "--":
			return value, append(out, args[i:]...)
		case strings.HasPrefix(args[i], "-") && a == name && i+1 < len(args):
			value = args[i+1]
			i++
		case strings.HasPrefix(args[i], "-") && strings.HasPrefix(a, name+"="):
			value = strings.TrimPrefix(a, name+"=")
		default:
			out = append(out, args[i])
		}
	}
	return value, out
}

const loadHelp = "Measure the queue and the ledger end to end. Creates K orgs of its own (plan standard, a purchase grant) under a\n" +
	"fresh prefix, enqueues N usage events of 0.001 credit for them (one per task, or --batch-size per task with --mode batch)\n" +
	"from P goroutines, at full speed or --rate events/s, waits until all are applied, and prints events/s end to end, the\n" +
	"enqueue rate and the p50/p99/max enqueue→applied latency. It needs a running worker on the same DATABASE_URL and\n" +
	"REDIS_URL (`creditd worker` in another terminal, or `creditd all`), and fails when nothing is applied within 30 s.\n" +
	"--noop-baseline first measures asynq alone (the same tasks, a no-op handler, concurrency 256 as the worker's\n" +
	"--usage-concurrency, a queue of the run's own that is deleted afterwards). --worker-pid samples the worker's memory.\n" +
	"Only a local Postgres and Redis are loaded unless --allow-remote. The orgs and their events stay in the ledger (use a\n" +
	"database of its own)."
