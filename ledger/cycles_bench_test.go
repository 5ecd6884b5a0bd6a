package ledger_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// benchCycleCatalog has the plans of the cycle benchmark, 100 credits a
// month each. At every boundary from the third on, an org on "capped" does
// the whole month-boundary work: last cycle's carried 30 expire, 70 of this
// cycle's exceed the rollover cap and expire, 30 roll over (a rollover
// entry), and the new 100 are granted: 4 entries, 2 lot updates, a new lot.
// An org on "expiring" (like standard) has its 100 expire and gets 100 new:
// 2 entries, 1 lot update, a new lot.
func benchCycleCatalog() *config.Catalog {
	c := config.DefaultCatalog()
	capacity := cr("30")
	c.Plans["capped"] = config.Plan{Name: "capped", MonthlyCredits: cr("100"), RolloverMonths: 1, RolloverCap: &capacity,
		Overage: config.DefaultOverage(), Price: "0.00", PriceMoney: c.Plans["free"].PriceMoney}
	c.Plans["expiring"] = config.Plan{Name: "expiring", MonthlyCredits: cr("100"),
		Overage: config.DefaultOverage(), Price: "0.00", PriceMoney: c.Plans["free"].PriceMoney}
	return c
}

// benchWant is what one org's boundary writes, per plan.
var benchWant = map[string][]string{
	"capped":   {"expiry -30", "expiry -70", "rollover 0 carried 30", "grant 100"},
	"expiring": {"expiry -100", "grant 100"},
}

type cycleBench struct {
	pool  *pgxpool.Pool
	url   string
	clock *ledgertest.Clock
	l     *ledger.Ledger
	next  int // the next boundary to perform: month(next)
}

var cycleBenches = map[string]*cycleBench{}

// setupCycleBench creates orgs orgs on plan anchored on 1 January 2026
// (rows inserted in bulk, as a test fixture) and performs their first two
// boundaries with the engine itself, so that the measured boundaries have
// lots to expire and to roll over.
func setupCycleBench(b *testing.B, plan string, orgs, page, workers int) *cycleBench {
	b.Helper()
	key := fmt.Sprint(plan, orgs)
	if s, ok := cycleBenches[key]; ok {
		return s
	}
	ctx := context.Background()
	u := ledgertest.NewURLUntilExit(b)
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
INSERT INTO orgs (org_id, plan, anchor, time_zone, created_at)
SELECT format('org-%s', lpad(i::text, 7, '0')), $2, '2026-01-01Z', 'UTC', '2026-01-01Z'
FROM generate_series(1, $1) i`, orgs, plan)
	if err != nil {
		b.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
INSERT INTO balances (org_id, available, held, debt, last_at, next_cycle_at) SELECT org_id, 0, 0, 0, created_at, anchor FROM orgs;
ANALYZE orgs; ANALYZE balances;`)
	if err != nil {
		b.Fatal(err)
	}
	s := &cycleBench{pool: pool, url: u, clock: ledgertest.NewClock(jan1)}
	s.l = ledger.New(benchCycleCatalog(), s.clock)
	for range 2 {
		if n := s.boundary(b, page, workers); n != orgs {
			b.Fatalf("setup: %d orgs advanced, want %d", n, orgs)
		}
	}
	// Measure with statistics (autovacuum would have analyzed by now) and
	// on fresh connections, as in setupOnce.
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	pool.Close()
	if s.pool, err = pgxpool.New(ctx, u); err != nil {
		b.Fatal(err)
	}
	cycleBenches[key] = s
	return s
}

// boundary performs the next month boundary the way a sweep would: pages
// of due orgs from DueOrgs, each page one AdvanceCycles transaction, run by
// workers goroutines. It returns the orgs advanced.
func (s *cycleBench) boundary(b *testing.B, page, workers int) int {
	ctx := context.Background()
	now := month(s.next).Add(time.Minute)
	s.clock.Set(now)
	s.next++
	pages := make(chan []string, workers)
	var mu sync.Mutex
	advanced := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for orgs := range pages {
				err := ledger.WithRetry(ctx, s.pool, func(tx pgx.Tx) error {
					reps, err := s.l.AdvanceCycles(ctx, tx, orgs, now)
					if err != nil {
						return err
					}
					n := 0
					for _, r := range reps {
						if len(r.Cycles) == 1 {
							n++
						}
					}
					mu.Lock()
					advanced += n
					mu.Unlock()
					return nil
				})
				if err != nil {
					b.Error(err)
				}
			}
		}()
	}
	var cur ledger.DueCursor
	for {
		p, err := s.l.DueOrgs(ctx, s.pool, ledger.DueCycles, now, cur, page)
		if err != nil {
			b.Error(err)
			break
		}
		if len(p.Orgs) > 0 {
			pages <- p.Orgs
		}
		if !p.More {
			break
		}
		cur = p.Next
	}
	close(pages)
	wg.Wait()
	return advanced
}

// benchCycles measures month boundaries (expire the old cycle, roll over,
// allocate the new one) over orgs orgs: every iteration is the next month.
//
// Besides orgs/s it reports the CPU time one org's boundary costs, in this
// process (Go) and in the Postgres backends serving it (read from /proc, so
// only with a local server), and what two idle cores would do at that cost.
// On a machine shared with other work the wall-clock rate says little; the
// CPU cost holds.
func benchCycles(b *testing.B, plan string, orgs, page, workers int) {
	s := setupCycleBench(b, plan, orgs, page, workers)
	s.pool.Reset() // fresh connections: their backends' CPU time is this run's
	goCPU := processCPU()
	b.ResetTimer()
	for range b.N {
		if n := s.boundary(b, page, workers); n != orgs {
			b.Fatalf("%d orgs advanced, want %d", n, orgs)
		}
	}
	b.StopTimer()
	goCPU = processCPU() - goCPU
	n := float64(b.N * orgs)
	b.ReportMetric(n/b.Elapsed().Seconds(), "orgs/s")
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(goCPU.Microseconds())/n, "go-cpu-µs/org")
	if pgCPU, err := backendCPU(s.pool); err != nil {
		b.Logf("postgres CPU not measured: %v", err)
	} else {
		b.ReportMetric(float64(pgCPU.Microseconds())/n, "pg-cpu-µs/org")
		b.ReportMetric(2*n/(goCPU+pgCPU).Seconds(), "orgs/s-on-2-idle-cores")
	}
	// What one org's boundary wrote, and the ledger still verifies.
	h, err := s.l.History(context.Background(), s.pool, "org-0000001", 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	want := benchWant[plan]
	var got []string
	for _, e := range h[len(h)-len(want):] {
		got = append(got, summary(e))
	}
	if !equalStrings(got, want) {
		b.Fatalf("a boundary wrote %q, want %q", got, want)
	}
	if orgs <= 10000 {
		rep, err := s.l.Verify(context.Background(), s.pool)
		if err != nil || !rep.OK {
			b.Fatalf("verify: %+v %v", rep.Violations, err)
		}
	}
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the CPU time the Postgres backends of the pool's database
// have used, from /proc/PID/stat (utime and stime, in clock ticks of 1/100 s).
func backendCPU(pool *pgxpool.Pool) (time.Duration, error) {
	rows, err := pool.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return 0, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// Fields after the command name, which is in parentheses.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		for _, i := range []int{11, 12} { // utime, stime (fields 14 and 15)
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return 0, err
			}
			ticks += v
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// BenchmarkCycles: month boundaries of 10,000 and 100,000 orgs in pages of
// 1,000 (and 100) orgs, workers goroutines taking the pages.
func BenchmarkCycles(b *testing.B) {
	for _, c := range []struct {
		plan                string
		orgs, page, workers int
	}{
		{"capped", 10000, 1000, 4}, {"capped", 10000, 100, 4}, {"capped", 10000, 1000, 1}, {"capped", 100000, 1000, 4},
		{"expiring", 10000, 1000, 4}, {"expiring", 100000, 1000, 4},
	} {
		b.Run(fmt.Sprintf("plan=%s/orgs=%d/page=%d/workers=%d", c.plan, c.orgs, c.page, c.workers), func(b *testing.B) {
			benchCycles(b, c.plan, c.orgs, c.page, c.workers)
		})
	}
}
