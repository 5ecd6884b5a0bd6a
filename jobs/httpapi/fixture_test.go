package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/httpapi"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
	"github.com/creditd/creditd/notify"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

// testRedisDB is this package's Redis database number.
const testRedisDB = 13

const operatorToken = "operator-secret-7f3a"

// stripeSecret is the test API's STRIPE_WEBHOOK_SECRET.
const stripeSecret = "whsec_test_creditd_0123456789"

// env is one API server over its own database, on a shared Redis. Org ids
// carry a random suffix, so tests sharing the Redis database never share a
// task id.
type env struct {
	t      *testing.T
	ctx    context.Context
	url    string
	pool   *pgxpool.Pool
	l      *ledger.Ledger
	redis  asynq.RedisClientOpt
	jobs   *jobs.Client
	insp   *asynq.Inspector
	api    *httpapi.Server
	srv    *httptest.Server
	reg    *prometheus.Registry
	logs   *jobstest.LockedBuffer
	suffix string
}

// envOpts are the optional settings of a test API.
type envOpts struct {
	operatorToken *string    // default operatorToken
	dbURL         string     // default a fresh database
	setup         func(*env) // runs before the server starts
}

func newEnv(t *testing.T, redisOpt asynq.RedisClientOpt, o *envOpts) *env {
	t.Helper()
	if o == nil {
		o = &envOpts{}
	}
	url := o.dbURL
	if url == "" {
		url = ledgertest.NewURL(t)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	e := &env{t: t, ctx: context.Background(), url: url, pool: ledgertest.Pool(t, url),
		l: ledger.New(config.DefaultCatalog(), nil), redis: redisOpt, jobs: jobs.NewClient(redisOpt),
		insp: asynq.NewInspector(redisOpt), reg: prometheus.NewRegistry(), logs: &jobstest.LockedBuffer{},
		suffix: hex.EncodeToString(suffix)}
	t.Cleanup(func() { e.jobs.Close(); e.insp.Close() })
	token := operatorToken
	if o.operatorToken != nil {
		token = *o.operatorToken
	}
	api, err := httpapi.New(httpapi.Config{
		Ledger: e.l, DB: e.pool, Jobs: e.jobs, Redis: redisOpt, OperatorToken: token,
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: e.reg, Gatherer: e.reg,
		// The production defaults: https only, no private addresses.
		WebhookPolicy:       notify.WebhookOptions{RequireHTTPS: true},
		StripeWebhookSecret: stripeSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.api = api
	if o.setup != nil {
		o.setup(e)
	}
	e.srv = httptest.NewServer(api)
	t.Cleanup(func() {
		e.srv.Close()
		if err := api.Close(); err != nil {
			t.Errorf("api close: %v", err)
		}
	})
	return e
}

// orgName is name made unique to this test.
func (e *env) orgName(name string) string { return name + "-" + e.suffix }

// org creates an org (unique to this test) and grants it amount credits.
func (e *env) org(name, amount string) string {
	e.t.Helper()
	id := e.orgName(name)
	e.tx(func(tx pgx.Tx) error {
		if _, err := e.l.CreateOrg(e.ctx, tx, ledger.NewOrg{ID: id, Plan: "standard"}); err != nil {
			return err
		}
		if amount == "" {
			return nil
		}
		_, err := e.l.Grant(e.ctx, tx, ledger.Grant{OrgID: id, Amount: credits.MustParse(amount), Source: ledger.SourcePurchase, Key: "seed"})
		return err
	})
	return id
}

func (e *env) tx(fn func(tx pgx.Tx) error) {
	e.t.Helper()
	if err := ledger.WithTx(e.ctx, e.pool, fn); err != nil {
		e.t.Fatalf("tx: %v", err)
	}
}

func (e *env) token(org string, role ledger.Role) (string, ledger.Token) {
	e.t.Helper()
	var plaintext string
	var tok ledger.Token
	e.tx(func(tx pgx.Tx) (err error) {
		plaintext, tok, err = e.l.CreateToken(e.ctx, tx, org, role)
		return err
	})
	return plaintext, tok
}

// auth sets the Authorization header of a request.
type auth func(*http.Request)

func bearer(token string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func basic(user, password string) auth {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

var operator = bearer(operatorToken)

func noAuth(*http.Request) {}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody is the API's error answer.
type errorBody struct {
	Error  string `json:"error"`
	Field  string `json:"field"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (r response) errorBody(t *testing.T) errorBody {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error == "" {
		t.Fatalf("status %d: body is not a JSON error: %v\n%s", r.status, err, r.body)
	}
	return b
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("status %d: %v\n%s", r.status, err, r.body)
	}
}

// do sends a request and returns the whole response.
func (e *env) do(method, path string, body string, a auth, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	a(req)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// tasksOf returns the tasks of the usage queue (pending, scheduled or
// archived) that carry events of org: the queue is shared with the other
// tests, the orgs are not.
func (e *env) tasksOf(org string) []*asynq.TaskInfo {
	e.t.Helper()
	var out []*asynq.TaskInfo
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		e.insp.ListPendingTasks, e.insp.ListScheduledTasks, e.insp.ListArchivedTasks, e.insp.ListRetryTasks,
	} {
		for page := 1; ; page++ {
			tasks, err := list(jobs.QueueUsage, asynq.PageSize(1000), asynq.Page(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break
			}
			if err != nil {
				e.t.Fatal(err)
			}
			for _, ti := range tasks {
				if taskHasOrg(ti, org) {
					out = append(out, ti)
				}
			}
			if len(tasks) < 1000 {
				break
			}
		}
	}
	return out
}

func taskHasOrg(ti *asynq.TaskInfo, org string) bool {
	switch ti.Type {
	case jobs.TypeUsageBatch:
		var p jobs.UsageBatchPayload
		if json.Unmarshal(ti.Payload, &p) != nil {
			return false
		}
		for _, ev := range p.Events {
			if ev.OrgID == org {
				return true
			}
		}
		return false
	default:
		var p struct {
			OrgID string `json:"org_id"`
		}
		return json.Unmarshal(ti.Payload, &p) == nil && p.OrgID == org
	}
}

// rowCounts changes with any write to the test's database.
func (e *env) rowCounts() string {
	e.t.Helper()
	var counts []int64
	err := e.pool.QueryRow(e.ctx, `SELECT ARRAY[
		(SELECT count(*) FROM orgs), (SELECT count(*) FROM lots), (SELECT count(*) FROM operations),
		(SELECT count(*) FROM entries), (SELECT count(*) FROM usage_events), (SELECT count(*) FROM holds),
		(SELECT count(*) FROM api_tokens), (SELECT count(*) FROM alert_rules), (SELECT count(*) FROM webhooks),
		(SELECT count(*) FROM notifications), (SELECT count(*) FROM outbox),
		(SELECT coalesce(sum(available), 0) FROM balances)]`).Scan(&counts)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(counts)
	return string(b)
}

func (e *env) verify() {
	e.t.Helper()
	rep, err := e.l.Verify(e.ctx, e.pool)
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK {
		e.t.Fatalf("verify: %+v", rep.Violations)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testRedis(t *testing.T) asynq.RedisClientOpt { return jobstest.Redis(t, testRedisDB) }
