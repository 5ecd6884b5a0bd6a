package ledger_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// benchOrgs creates n orgs, each with a large never-expiring balance, in a
// few big transactions.
func benchOrgs(b *testing.B, pool *pgxpool.Pool, l *ledger.Ledger, n int) []string {
	b.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("org-%05d", i)
	}
	const chunk = 1000
	for start := 0; start < n; start += chunk {
		err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
			for _, id := range ids[start:min(start+chunk, n)] {
				if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: id, Plan: "standard"}); err != nil {
					return err
				}
				if _, err := l.Grant(ctx, tx, ledger.Grant{OrgID: id, Amount: cr("100000000"), Source: ledger.SourcePurchase, Key: "seed"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// benchSetups keeps each benchmark's database and orgs across the runs with
// growing b.N that the testing package makes, so setup happens once.
var benchSetups = map[string]*benchSetup{}

type benchSetup struct {
	pool *pgxpool.Pool
	ids  []string
}

func setupOnce(b *testing.B, l *ledger.Ledger, orgs int) (*pgxpool.Pool, []string) {
	b.Helper()
	if s, ok := benchSetups[b.Name()]; ok {
		return s.pool, s.ids
	}
	u := ledgertest.NewURLUntilExit(b)
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	ids := benchOrgs(b, pool, l, orgs)
	// Measure a database with statistics, as production's is (autovacuum
	// analyzes within a minute), on fresh connections: plans cached while
	// the tables were empty would scan them whole until replanned.
	if _, err := pool.Exec(context.Background(), "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	pool.Close()
	if pool, err = pgxpool.New(context.Background(), u); err != nil {
		b.Fatal(err)
	}
	benchSetups[b.Name()] = &benchSetup{pool: pool, ids: ids}
	return pool, ids
}

// benchUsage records batch events per transaction. The events of one
// transaction are spread over orgsPerTx consecutive orgs, the way a worker
// that shards orgs into batches would group them.
func benchUsage(b *testing.B, orgs, batch, orgsPerTx int) {
	l := ledger.New(config.DefaultCatalog(), nil)
	pool, ids := setupOnce(b, l, orgs)
	var seq atomic.Int64
	amount := cr("0.25")
	b.SetParallelism(8) // 8 × GOMAXPROCS = 16 goroutines, as many clients as the pgbench ceiling uses
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		events := make([]ledger.UsageEvent, batch)
		for pb.Next() {
			n := seq.Add(1)
			first := int(n) * orgsPerTx
			for i := range events {
				org := ids[(first+i%orgsPerTx)%len(ids)]
				events[i] = ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("e%d-%d", n, i), Amount: &amount}
			}
			err := ledger.WithRetry(ctx, pool, func(tx pgx.Tx) error {
				_, err := l.RecordUsage(ctx, tx, events)
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	rep, err := l.Verify(context.Background(), pool)
	if err != nil || !rep.OK {
		b.Fatalf("verify after benchmark: %+v %v", rep.Violations, err)
	}
}

// BenchmarkUsage_HotOrg: every transaction is one event on the same org.
func BenchmarkUsage_HotOrg(b *testing.B) { benchUsage(b, 1, 1, 1) }

// BenchmarkUsage_SpreadOrgs: one event per transaction over 10,000 orgs.
func BenchmarkUsage_SpreadOrgs(b *testing.B) { benchUsage(b, 10000, 1, 1) }

// BenchmarkUsage_HotOrgBatch100: 100 events of one org per transaction.
func BenchmarkUsage_HotOrgBatch100(b *testing.B) { benchUsage(b, 1, 100, 1) }

// BenchmarkUsage_SpreadOrgsBatch100: 100 events of 100 orgs (one each) per
// transaction over 10,000 orgs.
func BenchmarkUsage_SpreadOrgsBatch100(b *testing.B) { benchUsage(b, 10000, 100, 100) }

// benchGroupCommit has 64 goroutines each hand one event at a time to a
// Batcher and wait for its commit, the way the worker's usage handlers do:
// one event per call, group-committed. (The worker runs 256 by default; 64
// matches pgbench's 64 clients, the ceiling these figures are set against.)
func benchGroupCommit(b *testing.B, orgs int) {
	l := ledger.New(config.DefaultCatalog(), nil)
	pool, ids := setupOnce(b, l, orgs)
	batcher := ledger.NewBatcher(l, pool, ledger.BatchConfig{}, nil)
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { batcher.Run(ctx); close(stopped) }()
	defer func() { stop(); <-stopped }()
	var seq atomic.Int64
	amount := cr("0.25")
	b.SetParallelism(32) // 32 × GOMAXPROCS = 64 callers on this machine
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			ev := ledger.UsageEvent{OrgID: ids[int(n)%len(ids)], EventID: fmt.Sprintf("g%d", n), Amount: &amount}
			if _, err := batcher.Apply(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	rep, err := l.Verify(context.Background(), pool)
	if err != nil || !rep.OK {
		b.Fatalf("verify after benchmark: %+v %v", rep.Violations, err)
	}
}

// BenchmarkUsage_SpreadOrgsGroupCommit: one event per call over 10,000
// orgs, group-committed.
func BenchmarkUsage_SpreadOrgsGroupCommit(b *testing.B) { benchGroupCommit(b, 10000) }

// BenchmarkUsage_HotOrgGroupCommit: one event per call on one org,
// group-committed.
func BenchmarkUsage_HotOrgGroupCommit(b *testing.B) { benchGroupCommit(b, 1) }

// BenchmarkBalance reads the balance of one of 1,000 orgs.
func BenchmarkBalance(b *testing.B) {
	l := ledger.New(config.DefaultCatalog(), nil)
	pool, ids := setupOnce(b, l, 1000)
	var seq atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := l.Balance(ctx, pool, ids[int(seq.Add(1))%len(ids)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
