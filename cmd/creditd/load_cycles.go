package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// cyclesLoadSummary is `creditd load --mode cycles --json`.
type cyclesLoadSummary struct {
	Mode          string       `json:"mode"`
	Orgs          int          `json:"orgs"`
	Plan          string       `json:"plan"`
	OrgPrefix     string       `json:"org_prefix"`
	SetupSeconds  float64      `json:"setup_seconds"`
	At            time.Time    `json:"at"`
	Seconds       float64      `json:"seconds"`
	OrgsPerSecond float64      `json:"orgs_per_second"` // boundaries performed per second
	Cycle         cycleSummary `json:"cycle"`
	WorkerRSS     *rssSummary  `json:"worker_rss,omitempty"`
}

// loadCycles measures a month boundary through the queue: it creates orgs
// anchored at the start of last month, performs their first boundary
// directly (setup, not timed), then times `creditd cycle` as of now, which
// has the workers expire or roll over last month's allocation and grant
// this month's for every org, in pages fanned out by the sweeps.
func (r *loadRun) loadCycles(ctx context.Context, plan string) (*cyclesLoadSummary, error) {
	now := time.Now().UTC()
	lastMonth := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	r.ids = make([]string, r.cfg.orgs)
	width := len(strconv.Itoa(r.cfg.orgs - 1))
	for i := range r.ids {
		r.ids[i] = fmt.Sprintf("%s-%0*d", r.cfg.prefix, width, i)
	}
	sum := &cyclesLoadSummary{Mode: "cycles", Orgs: r.cfg.orgs, Plan: plan, OrgPrefix: r.cfg.prefix}
	r.status("creating %d orgs %s-* on plan %s anchored at %s", r.cfg.orgs, r.cfg.prefix, plan, lastMonth.Format(time.RFC3339))
	start := time.Now()
	l := r.a.ledger
	for chunk := range slices.Chunk(r.ids, loadOrgChunk) {
		err := ledger.WithRetry(ctx, r.a.pool, func(tx pgx.Tx) error {
			for _, id := range chunk {
				if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: id, Plan: plan, Anchor: &lastMonth}); err != nil {
					return err
				}
			}
			_, err := l.AdvanceCycles(ctx, tx, chunk, lastMonth.Add(time.Minute))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create orgs: %w", err)
		}
	}
	sum.SetupSeconds = time.Since(start).Seconds()

	var rss *rssSampler
	if r.cfg.workerPID != 0 {
		rss = startRSS(r.cfg.workerPID)
	}
	client := jobs.NewClient(r.redis)
	defer client.Close()
	sum.At = time.Now().UTC()
	start = time.Now()
	cyc, err := runSweeps(ctx, client, sum.At)
	if rss != nil {
		sum.WorkerRSS = rss.stop()
	}
	if err != nil {
		return nil, err
	}
	sum.Seconds = time.Since(start).Seconds()
	sum.Cycle = cyc
	if len(cyc.Failed) > 0 {
		return nil, errors.New("some orgs were not advanced: " + cyc.Failed[0].OrgID + ": " + cyc.Failed[0].Error)
	}
	// Every boundary the sweeps performed counts, also those of orgs outside
	// the run that happened to be due in the same database.
	sum.OrgsPerSecond = float64(cyc.Cycles) / sum.Seconds
	return sum, nil
}
