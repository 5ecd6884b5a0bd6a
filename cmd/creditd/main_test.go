package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/ledger/ledgertest"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

// TestCLI builds the binary once and runs every end-to-end case against it,
// each on a fresh database. The cases are subtests so that the binary lives
// in TestCLI's TempDir and is removed once they are all done (ledgertest.Main
// exits the process, so TestMain cannot clean up after itself).
func TestCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "creditd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, c *cli)
	}{
		{"HappyPath", testHappyPath},
		{"LimitsRejectionsAndRestore", testLimitsRejectionsAndRestore},
		{"BadInput", testBadInput},
		{"VerifyDetectsCorruptBalance", testVerifyDetectsCorruptBalance},
		{"UsageAndEnvironment", testUsageAndEnvironment},
		{"Worker", testWorker},
		{"Load", testLoad},
		{"TokenAndWeb", testTokenAndWeb},
		{"RedisRestart", testRedisRestart},
		{"OperatorsUI", testOperatorsUI},
		{"Cycle", testCycle},
		{"Alerts", testAlerts},
		{"Recharge", testRecharge},
		{"Report", testReport},
		{"RechargeWorkerKilled", testRechargeWorkerKilled},
		{"PaymentsWalkthrough", testPaymentsWalkthrough},
		{"OrgShowPayments", testOrgShowPayments},
		{"Invoices", testInvoices},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newCLI(t, bin))
		})
	}
}

// cli runs the built binary against the test's own database.
type cli struct {
	t   *testing.T
	bin string
	url string
	env []string
	db  *pgx.Conn // see conn
}

func newCLI(t *testing.T, bin string) *cli {
	url := ledgertest.NewURL(t)
	return &cli{t: t, bin: bin, url: url, env: append(baseEnv(), config.EnvDatabaseURL+"="+url)}
}

// baseEnv is the test's environment without creditd's own variables, so that
// what the developer has set does not leak into the cases (libpq variables
// like PGPASSWORD stay).
func baseEnv() []string {
	own := []string{config.EnvDatabaseURL, config.EnvRedisURL, config.EnvHTTPAddr, config.EnvAPIToken,
		config.EnvCatalog, config.EnvStripeSecretKey, config.EnvStripeWebhookSecret, config.EnvStripeAPIBase,
		config.EnvSMTPURL, config.EnvSMTPFrom, config.EnvWebhookAllowPrivate, config.EnvWebhookRequireHTTPS, config.EnvLinkBase}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(own, name) {
			env = append(env, kv)
		}
	}
	return env
}

type result struct {
	code           int
	stdout, stderr string
}

// runEnv runs creditd with args and the given environment.
func (c *cli) runEnv(env []string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		c.t.Fatalf("creditd %s: %v", strings.Join(args, " "), err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runEnv(c.env, args...)
}

// ok runs creditd, fails the test unless it exits 0, and returns stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("creditd %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// json runs creditd with args (which include --json), requires exit status
// want and exactly one JSON document on stdout, and decodes it into v.
func (c *cli) json(want int, v any, args ...string) {
	c.t.Helper()
	r := c.run(args...)
	if r.code != want {
		c.t.Fatalf("creditd %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.code, want, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(v); err != nil {
		c.t.Fatalf("creditd %s: stdout is not JSON: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		c.t.Fatalf("creditd %s: stdout holds more than one JSON document:\n%s", strings.Join(args, " "), r.stdout)
	}
}

// conn is the case's connection to its database, opened on first use and
// closed when the case ends. A case uses it from one goroutine at a time.
func (c *cli) conn() *pgx.Conn {
	c.t.Helper()
	if c.db != nil {
		return c.db
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close(ctx) })
	c.db = conn
	return conn
}

// exec runs SQL on the test's database directly, bypassing the ledger.
func (c *cli) exec(sql string, args ...any) {
	c.t.Helper()
	if _, err := c.conn().Exec(context.Background(), sql, args...); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
}

// rowCounts counts the rows of every ledger table and sums the balances: it
// changes with any write.
func (c *cli) rowCounts() string {
	c.t.Helper()
	var counts []int64
	err := c.conn().QueryRow(context.Background(), `SELECT ARRAY[
		(SELECT count(*) FROM orgs), (SELECT count(*) FROM balances), (SELECT count(*) FROM lots),
		(SELECT count(*) FROM operations), (SELECT count(*) FROM entries), (SELECT count(*) FROM usage_events),
		(SELECT count(*) FROM cycle_usage), (SELECT count(*) FROM limits), (SELECT count(*) FROM holds),
		(SELECT count(*) FROM alert_rules), (SELECT count(*) FROM webhooks), (SELECT count(*) FROM notifications),
		(SELECT count(*) FROM outbox), (SELECT count(*) FROM payment_methods), (SELECT count(*) FROM recharge_settings),
		(SELECT coalesce(sum(available), 0) FROM balances)]`).Scan(&counts)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := json.Marshal(counts)
	return string(b)
}

// Redis database numbers of the CLI cases that run a worker (jobstest
// flushes each before and after use). worker_test.go has its own.
const (
	redisDBHappyPath = 6
	redisDBLimits    = 7
	redisDBBadInput  = 8
	redisDBVerify    = 9
)

// startWorker gives the case a Redis database of its own and runs `creditd
// worker` on it and the case's database until the case ends, so that `usage
// --wait` is applied. REDIS_URL is added to the case's environment.
func (c *cli) startWorker(db int) {
	c.t.Helper()
	c.startWorkerOn(jobstest.URL(jobstest.Redis(c.t, db)))
}

// startWorkerOn runs `creditd worker` on the Redis at redisURL, which is
// added to the case's environment, until the case ends.
func (c *cli) startWorkerOn(redisURL string) *exec.Cmd {
	c.t.Helper()
	c.env = append(c.env, config.EnvRedisURL+"="+redisURL)
	cmd := exec.Command(c.bin, "worker", "--concurrency", "8")
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				c.t.Errorf("creditd worker: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			c.t.Errorf("creditd worker did not stop on SIGTERM\n%s", stderr.String())
		}
	})
	return cmd
}
