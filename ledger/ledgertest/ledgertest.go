// Package ledgertest gives tests a real, migrated PostgreSQL database of their
// own. A template database is migrated once per test binary and every test
// gets a clone of it (CREATE DATABASE ... TEMPLATE), which takes milliseconds
// and lets tests commit, run concurrently and be dropped afterwards. It
// connects to the server named by DATABASE_URL (set by `make test`) and
// touches only databases it created, named creditd_test_*.
package ledgertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/ledger"
)

var (
	templateOnce sync.Once
	templateName string
	templateErr  error

	atExitMu sync.Mutex
	atExit   []string // databases to drop when the test binary ends
)

// Main runs the package's tests and drops the template afterwards. Call it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	atExitMu.Lock()
	drop := append(atExit, templateName)
	atExitMu.Unlock()
	for _, name := range drop {
		if name == "" {
			continue
		}
		if err := dropDatabase(ctx, name); err != nil {
			fmt.Fprintf(os.Stderr, "ledgertest: drop %s: %v\n", name, err)
		}
	}
	cancel()
	os.Exit(code)
}

// BaseURL is DATABASE_URL; tests fail (never skip) without it.
func BaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Fatal("DATABASE_URL is not set: run the tests with `make test`, which provisions PostgreSQL")
	}
	return u
}

// URLFor returns DATABASE_URL with the database name replaced.
func URLFor(base, db string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL: %w", err)
	}
	u.Path = "/" + db
	return u.String(), nil
}

func adminExec(ctx context.Context, sql string) error {
	base := os.Getenv("DATABASE_URL")
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connect %s: %w", redact(base), err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func dropDatabase(ctx context.Context, name string) error {
	return adminExec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, pgx.Identifier{name}.Sanitize()))
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func makeTemplate() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "creditd_test_tmpl_" + randomSuffix()
	if err := adminExec(ctx, fmt.Sprintf(`CREATE DATABASE %s`, pgx.Identifier{name}.Sanitize())); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrateTemplate(ctx, name); err != nil {
		_ = dropDatabase(ctx, name)
		return "", err
	}
	return name, nil
}

func migrateTemplate(ctx context.Context, name string) error {
	u, err := URLFor(os.Getenv("DATABASE_URL"), name)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		return err
	}
	defer pool.Close()
	return ledger.Migrate(ctx, pool)
}

// NewURL creates a fresh migrated database for the test, dropped when the
// test ends, and returns its URL (for tests that start other processes).
func NewURL(t testing.TB) string {
	t.Helper()
	name, u := newDatabase(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, name); err != nil {
			t.Errorf("ledgertest: drop %s: %v", name, err)
		}
	})
	return u
}

// NewURLUntilExit is NewURL for benchmarks, whose function the testing
// package calls several times: the database lives until Main returns.
func NewURLUntilExit(t testing.TB) string {
	t.Helper()
	name, u := newDatabase(t)
	atExitMu.Lock()
	atExit = append(atExit, name)
	atExitMu.Unlock()
	return u
}

func newDatabase(t testing.TB) (name, u string) {
	t.Helper()
	BaseURL(t)
	templateOnce.Do(func() { templateName, templateErr = makeTemplate() })
	if templateErr != nil {
		t.Fatalf("ledgertest: %v", templateErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name = "creditd_test_" + randomSuffix()
	// CREATE DATABASE from one template is refused while another clone of
	// it is being made; retry briefly.
	var err error
	for i := 0; i < 50; i++ {
		err = adminExec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`,
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{templateName}.Sanitize()))
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ledgertest: clone database: %v", err)
	}
	u, err = URLFor(os.Getenv("DATABASE_URL"), name)
	if err != nil {
		t.Fatal(err)
	}
	return name, u
}

// NewPool returns a pool on a fresh migrated database, closed and dropped
// when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Pool(t, NewURL(t))
}

// Pool opens a pool on the database at u, closed when the test ends.
func Pool(t testing.TB, u string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // runs before the drop registered earlier
	return pool
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "DATABASE_URL"
	}
	return p.Redacted()
}

// Clock is a settable clock for tests; safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
