package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// TestBatcher_ReportsBatches applies usage through a Batcher whose Observe
// records every batch and feeds Metrics: concurrent events are batched (never
// past MaxBatch), each event is reported once, and the ledger counters tell
// applied, rejected and replayed events apart.
func TestBatcher_ReportsBatches(t *testing.T) {
	t.Parallel()
	const (
		maxBatch = 5
		events   = 23
	)
	ctx := context.Background()
	pool := ledgertest.NewPool(t)
	l := ledger.New(config.DefaultCatalog(), nil)
	for _, org := range []ledger.NewOrg{{ID: "paying", Plan: "standard"}, {ID: "broke", Plan: "standard", Policy: ledger.PolicyReject}} {
		err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := l.CreateOrg(ctx, tx, org)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := l.Grant(ctx, tx, ledger.Grant{OrgID: "paying", Amount: credits.FromCredits(1000), Source: ledger.SourcePurchase, Key: "seed"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		reports []ledger.BatchReport
	)
	b := ledger.NewBatcher(l, pool, ledger.BatchConfig{MaxBatch: maxBatch, MaxWait: 20 * time.Millisecond, Observe: func(r ledger.BatchReport) {
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
		m.ObserveBatch(r)
	}}, nil)
	bctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.Run(bctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	amount := credits.MustParse("1")
	apply := func(org, event string) error {
		_, err := b.Apply(ctx, ledger.UsageEvent{OrgID: org, EventID: event, Amount: &amount})
		return err
	}
	// A burst, concurrently: batched.
	var wg sync.WaitGroup
	errs := make(chan error, events)
	for i := range events {
		wg.Go(func() { errs <- apply("paying", fmt.Sprintf("e%02d", i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Then one at a time: a replay, a rejection, and an event the ledger
	// refuses (unknown org), which fails and is in no result.
	if err := apply("paying", "e00"); err != nil {
		t.Fatal(err)
	}
	if err := apply("broke", "r1"); err != nil {
		t.Fatal(err)
	}
	if err := apply("nobody", "x1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("usage of an unknown org: %v, want not found", err)
	}

	mu.Lock()
	defer mu.Unlock()
	var reported, committed int
	for _, r := range reports {
		if r.Events < 1 || r.Events > maxBatch || len(r.Results) > r.Events || r.Duration <= 0 {
			t.Errorf("batch report %+v: want 1..%d events, no more results than events, a duration", r, maxBatch)
		}
		reported += r.Events
		committed += len(r.Results)
	}
	if want := events + 3; reported != want || committed != want-1 {
		t.Fatalf("%d events reported, %d committed, want %d and %d", reported, committed, want, want-1)
	}
	if len(reports) < (events+maxBatch-1)/maxBatch+3 {
		t.Fatalf("%d batches for %d events at most %d per batch", len(reports), reported, maxBatch)
	}

	for _, c := range []struct {
		name      string
		collector prometheus.Collector
		want      float64
	}{
		{"applied", m.usageEvents.WithLabelValues("applied", ""), events},
		{"rejected", m.usageEvents.WithLabelValues("rejected", ledger.ReasonInsufficientCredits), 1},
		{"replayed", m.usageReplays, 1},
	} {
		if got := testutil.ToFloat64(c.collector); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n := histogramCount(t, m.batchEvents); n != uint64(len(reports)) {
		t.Errorf("batch size histogram holds %d batches, want %d", n, len(reports))
	}
	if n := histogramCount(t, m.batchSeconds); n != uint64(len(reports)) {
		t.Errorf("batch duration histogram holds %d batches, want %d", n, len(reports))
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", problems, err)
	}
}

// histogramCount is the number of observations in h.
func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var out dto.Metric
	if err := h.Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram().GetSampleCount()
}
