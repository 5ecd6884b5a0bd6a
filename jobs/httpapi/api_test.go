package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/httpapi"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// TestAPI runs the API's cases in parallel on one Redis database (each on
// its own Postgres database and with its own orgs). It is not parallel
// itself, so no other test of the package uses the Redis database meanwhile.
func TestAPI(t *testing.T) {
	redisOpt := testRedis(t)
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Auth", testAuth},
		{"Monitor", testMonitor},
		{"BadInput", testBadInput},
		{"UsageSingle", testUsageSingle},
		{"UsageBatch", testUsageBatch},
		{"Holds", testHolds},
		{"BalanceAndHistory", testBalanceAndHistory},
		{"MetricsAndLogs", testMetricsAndLogs},
		{"Panic", testPanic},
		{"Alerts", testAlerts},
		{"Recharge", testRecharge},
		{"Invoices", testInvoices},
		{"StripeWebhook", testStripeWebhook},
		{"Report", testReport},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEnv(t, redisOpt, &envOpts{setup: func(e *env) {
				e.api.HandleOrgForTest("GET /v1/orgs/{org}/admin-probe", ledger.RoleAdmin, func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(http.StatusNoContent)
				})
				e.api.HandleOrgForTest("GET /v1/orgs/{org}/panic", ledger.RoleMember, func(http.ResponseWriter, *http.Request) {
					panic("boom")
				})
			}}))
		})
	}
	t.Run("NoOperatorToken", func(t *testing.T) {
		t.Parallel()
		empty := ""
		testNoOperatorToken(t, newEnv(t, redisOpt, &envOpts{operatorToken: &empty}))
	})
	t.Run("Readyz", func(t *testing.T) {
		t.Parallel()
		testReadyz(t, redisOpt)
	})
}

func testAuth(t *testing.T, e *env) {
	a := e.org("a", "10")
	b := e.org("b", "10")
	memberA, _ := e.token(a, ledger.RoleMember)
	adminA, _ := e.token(a, ledger.RoleAdmin)
	memberB, _ := e.token(b, ledger.RoleMember)
	revoked, rtok := e.token(a, ledger.RoleAdmin)
	e.tx(func(tx pgx.Tx) error { _, err := e.l.RevokeToken(e.ctx, tx, a, rtok.ID); return err })

	balanceA := "/v1/orgs/" + a + "/balance"
	probeA := "/v1/orgs/" + a + "/admin-probe"
	for _, tc := range []struct {
		name   string
		method string
		path   string
		auth   auth
		want   int
	}{
		{"no token", "GET", balanceA, noAuth, 401},
		{"unknown token", "GET", balanceA, bearer("nope"), 401},
		{"empty bearer", "GET", balanceA, bearer(""), 401},
		{"org token that looks right but is not", "GET", balanceA, bearer(memberA[:len(memberA)-1] + "x"), 401},
		{"revoked token", "GET", balanceA, bearer(revoked), 401},
		{"operator token with another scheme", "GET", balanceA, func(r *http.Request) { r.Header.Set("Authorization", "Token "+operatorToken) }, 401},
		{"basic auth is for the UI only", "GET", balanceA, basic("op", operatorToken), 401},
		{"operator token", "GET", balanceA, operator, 200},
		{"operator token, lower-case scheme", "GET", balanceA, func(r *http.Request) { r.Header.Set("Authorization", "bearer "+operatorToken) }, 200},
		{"member of the org", "GET", balanceA, bearer(memberA), 200},
		{"admin of the org", "GET", balanceA, bearer(adminA), 200},
		{"member of another org", "GET", balanceA, bearer(memberB), 403},
		{"member of another org posting usage", "POST", "/v1/orgs/" + a + "/usage", bearer(memberB), 403},
		{"member of another org on a hold", "POST", "/v1/orgs/" + a + "/holds/h1/release", bearer(memberB), 403},
		{"member on an admin route", "GET", probeA, bearer(memberA), 403},
		{"admin on an admin route", "GET", probeA, bearer(adminA), 204},
		{"operator on an admin route", "GET", probeA, operator, 204},
		{"admin of another org on an admin route", "GET", "/v1/orgs/" + b + "/admin-probe", bearer(adminA), 403},
		{"no token on an admin route", "GET", probeA, noAuth, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.rowCounts()
			r := e.do(tc.method, tc.path, `{"event_id":"e1","amount":"1"}`, tc.auth)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want >= 400 {
				body := r.errorBody(t)
				if body.Code != map[int]string{401: "unauthorized", 403: "forbidden"}[tc.want] {
					t.Errorf("code = %q", body.Code)
				}
				if after := e.rowCounts(); after != before {
					t.Errorf("refused request wrote: %s -> %s", before, after)
				}
			}
			if got := r.header.Get("WWW-Authenticate"); (tc.want == 401) != (got == `Bearer realm="creditd"`) {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		})
	}
	if tasks := e.tasksOf(a); len(tasks) != 0 {
		t.Fatalf("refused requests enqueued %d tasks", len(tasks))
	}
	// A member may record usage and hold credits; an org token may not be
	// the operator's: /monitor/ is the operator's alone.
	if r := e.do("POST", "/v1/orgs/"+a+"/usage", `{"event_id":"m1","amount":"1"}`, bearer(memberA)); r.status != 202 {
		t.Fatalf("member usage: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/orgs/"+a+"/holds", `{"hold_id":"h1","amount":"1","ttl_seconds":60}`, bearer(memberA)); r.status != 201 {
		t.Fatalf("member hold: %d %s", r.status, r.body)
	}
}

func testNoOperatorToken(t *testing.T, e *env) {
	a := e.org("a", "1")
	member, _ := e.token(a, ledger.RoleMember)
	for _, tc := range []struct {
		name, path string
		auth       auth
		want       int
	}{
		{"empty bearer on /v1", "/v1/orgs/" + a + "/balance", bearer(""), 401},
		{"bare Bearer on /v1", "/v1/orgs/" + a + "/balance", func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }, 401},
		{"the usual operator token on /v1", "/v1/orgs/" + a + "/balance", operator, 401},
		{"empty basic password on /monitor/", "/monitor/", basic("op", ""), 401},
		{"no auth on /monitor/", "/monitor/", noAuth, 401},
		{"org tokens still work", "/v1/orgs/" + a + "/balance", bearer(member), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.do("GET", tc.path, "", tc.auth); r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
		})
	}
}

func testMonitor(t *testing.T, e *env) {
	a := e.org("a", "10")
	member, _ := e.token(a, ledger.RoleMember)
	admin, _ := e.token(a, ledger.RoleAdmin)
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		auth    auth
		headers []string
		want    int
	}{
		{"no auth", "GET", "/monitor/", noAuth, nil, 401},
		{"wrong password", "GET", "/monitor/", basic("admin", "guess"), nil, 401},
		{"basic auth, any user", "GET", "/monitor/", basic("anyone", operatorToken), nil, 200},
		{"bearer operator", "GET", "/monitor/api/queues", operator, nil, 200},
		{"org member token", "GET", "/monitor/", bearer(member), nil, 403},
		{"org admin token", "GET", "/monitor/api/queues", bearer(admin), nil, 403},
		{"org token as basic password", "GET", "/monitor/", basic("x", admin), nil, 403},
		{"without the slash", "GET", "/monitor", basic("x", operatorToken), nil, http.StatusTemporaryRedirect},
		{"cross-site action", "POST", "/monitor/api/queues/usage:pause", basic("x", operatorToken), []string{"Sec-Fetch-Site", "cross-site"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			r := e.do(tc.method, tc.path, "", tc.auth, tc.headers...)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.want, r.body)
			}
			challenge := r.header.Get("WWW-Authenticate")
			if (tc.want == 401) != (challenge == `Basic realm="creditd"`) {
				t.Errorf("WWW-Authenticate = %q", challenge)
			}
			if tc.want == http.StatusTemporaryRedirect && r.header.Get("Location") != "/monitor/" {
				t.Errorf("Location = %q", r.header.Get("Location"))
			}
			if tc.want == 200 && tc.path == "/monitor/" && !strings.Contains(string(r.body), "<html") {
				t.Errorf("not the UI: %.200s", r.body)
			}
		})
	}

	// The UI shows payloads through the formatter: no metadata.
	body := `{"event_id":"shown","amount":"1","user":"u1","metadata":{"note":"hunter2-secret"}}`
	if r := e.do("POST", "/v1/orgs/"+a+"/usage", body, operator); r.status != 202 {
		t.Fatalf("usage: %d %s", r.status, r.body)
	}
	r := e.do("GET", "/monitor/api/queues/usage/tasks/"+jobs.UsageTaskID(a, "shown"), "", basic("x", operatorToken))
	if r.status != 200 || !strings.Contains(string(r.body), `\"event_id\":\"shown\"`) || strings.Contains(string(r.body), "hunter2") {
		t.Fatalf("task in the UI: %d %s", r.status, r.body)
	}
}

func TestFormatPayload(t *testing.T) {
	t.Parallel()
	amount := "2.5"
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	usage, _ := json.Marshal(jobs.UsagePayload{Version: 1, OrgID: "acme", EventID: "e1", Amount: &amount, User: "u1",
		OccurredAt: &at, Metadata: json.RawMessage(`{"card":"4242424242424242"}`)})
	events := make([]jobs.UsagePayload, 50)
	for i := range events {
		events[i] = jobs.UsagePayload{Version: 1, OrgID: fmt.Sprintf("org%d", i%7), EventID: fmt.Sprintf("e%d", i), Amount: &amount,
			Metadata: json.RawMessage(`{"secret":"s3cr3t"}`)}
	}
	batch, _ := json.Marshal(jobs.UsageBatchPayload{Version: 1, Events: events})
	for _, tc := range []struct {
		name, typ string
		payload   []byte
		want      []string
		wantNot   []string
	}{
		{"usage", jobs.TypeUsage, usage, []string{`"event_id":"e1"`, `"amount":"2.5"`, `"metadata":"(27 bytes, not shown)"`, `2026-03-01T12:00:00Z`}, []string{"4242"}},
		{"batch", jobs.TypeUsageBatch, batch, []string{`"events":50`, `"org_count":7`, `"event_id":"e0"`}, []string{"s3cr3t", `"e49"`}},
		{"hold", jobs.TypeHoldReserve, []byte(`{"v":1,"org_id":"acme","hold_id":"h1","amount":"1","ttl_seconds":60}`), []string{`"hold_id":"h1"`}, nil},
		{"not JSON", jobs.TypeUsage, []byte(`{{`), []string{"not a valid usage:record payload"}, []string{"{{"}},
		{"another type", "payment:charge", []byte(`{"customer":"cus_123"}`), []string{"22 bytes", "not shown"}, []string{"cus_123"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := httpapi.FormatPayload(tc.typ, tc.payload)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s does not contain %s", got, w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("%s shows %s", got, w)
				}
			}
			if len(got) > 1200 {
				t.Errorf("%d bytes shown", len(got))
			}
		})
	}
}

func testBadInput(t *testing.T, e *env) {
	a := e.org("a", "10")
	e.tx(func(tx pgx.Tx) error {
		_, err := e.l.Reserve(e.ctx, tx, ledger.Reservation{OrgID: a, HoldID: "held", Amount: credits.MustParse("1"), TTL: time.Hour})
		return err
	})
	usage := "/v1/orgs/" + a + "/usage"
	event := func(i int, extra string) string {
		return fmt.Sprintf(`{"event_id":"e%d","amount":"1"%s}`, i, extra)
	}
	batch := func(n int, bad map[int]string) string {
		evs := make([]string, n)
		for i := range evs {
			if b, ok := bad[i]; ok {
				evs[i] = b
			} else {
				evs[i] = event(i, "")
			}
		}
		return `{"events":[` + strings.Join(evs, ",") + `]}`
	}
	big := `{"event_id":"e1","amount":"1","metadata":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   string
		status int
		field  string
	}{
		{"oversized body", "POST", usage, big, 413, "body"},
		{"oversized batch", "POST", usage, `{"events":[` + strings.Repeat(event(1, `,"metadata":{"x":"`+strings.Repeat("b", 3000)+`"}`)+",", 400) + event(2, "") + `]}`, 413, "body"},
		{"empty body", "POST", usage, "", 400, "body"},
		{"malformed JSON", "POST", usage, `{"event_id":"e1",`, 400, "body"},
		{"not JSON", "POST", usage, `event_id=e1&amount=1`, 400, "body"},
		{"not an object", "POST", usage, `[{"event_id":"e1","amount":"1"}]`, 400, "body"},
		{"trailing data", "POST", usage, event(1, "") + ` {}`, 400, "body"},
		{"unknown field", "POST", usage, event(1, `,"colour":"red"`), 400, "colour"},
		{"version field is the task's, not the API's", "POST", usage, event(1, `,"v":1`), 400, "v"},
		{"amount as a JSON number", "POST", usage, `{"event_id":"e1","amount":1.5}`, 400, "amount"},
		{"amount as a JSON integer", "POST", usage, `{"event_id":"e1","amount":2}`, 400, "amount"},
		{"four decimals", "POST", usage, `{"event_id":"e1","amount":"1.0001"}`, 400, "amount"},
		{"negative amount", "POST", usage, `{"event_id":"e1","amount":"-1"}`, 400, "amount"},
		{"exponent", "POST", usage, `{"event_id":"e1","amount":"1e3"}`, 400, "amount"},
		{"units as a string", "POST", usage, `{"event_id":"e1","feature":"microservice","units":"2"}`, 400, "units"},
		{"zero units", "POST", usage, `{"event_id":"e1","feature":"microservice","units":0}`, 400, "units"},
		{"fractional runs", "POST", usage, `{"event_id":"e1","runs":1.5}`, 400, "runs"},
		{"zero runs", "POST", usage, `{"event_id":"e1","runs":0}`, 400, "runs"},
		{"unknown feature", "POST", usage, `{"event_id":"e1","feature":"teleport"}`, 400, "feature"},
		{"missing event id", "POST", usage, `{"amount":"1"}`, 400, "event_id"},
		{"reserved event id", "POST", usage, `{"event_id":"capture:x","amount":"1"}`, 400, "event_id"},
		{"nothing to charge", "POST", usage, `{"event_id":"e1"}`, 400, "amount"},
		{"amount and runs", "POST", usage, `{"event_id":"e1","amount":"1","runs":3}`, 400, "runs"},
		{"occurred_at not a time", "POST", usage, event(1, `,"occurred_at":"yesterday"`), 400, "occurred_at"},
		{"org_id of another org", "POST", usage, event(1, `,"org_id":"other"`), 400, "org_id"},
		{"metadata too large", "POST", usage, event(1, `,"metadata":{"x":"`+strings.Repeat("m", 5000)+`"}`), 400, "metadata"},
		{"batch over the limit", "POST", usage, batch(jobs.MaxBatchEvents+1, nil), 400, "events"},
		{"empty batch", "POST", usage, `{"events":[]}`, 400, "events"},
		{"null batch", "POST", usage, `{"events":null}`, 400, "events"},
		{"events not an array", "POST", usage, `{"events":{"event_id":"e1"}}`, 400, "events"},
		{"batch with another field", "POST", usage, `{"events":[` + event(1, "") + `],"org_id":"x"}`, 400, "org_id"},
		{"batch with one bad amount", "POST", usage, batch(5, map[int]string{2: `{"event_id":"e2","amount":"1.0001"}`}), 400, "events[2].amount"},
		{"batch with a number amount", "POST", usage, batch(5, map[int]string{3: `{"event_id":"e3","amount":1}`}), 400, "events[3].amount"},
		{"batch with an unknown field", "POST", usage, batch(5, map[int]string{1: event(1, `,"colour":"red"`)}), 400, "events[1].colour"},
		{"batch with an event that is not an object", "POST", usage, batch(3, map[int]string{1: `"e1"`}), 400, "events[1]"},
		{"batch with an unknown feature", "POST", usage, batch(3, map[int]string{2: `{"event_id":"e2","feature":"teleport"}`}), 400, "events[2].feature"},
		{"batch with an event of another org", "POST", usage, batch(3, map[int]string{0: event(0, `,"org_id":"other"`)}), 400, "events[0].org_id"},
		{"batch with a repeated event id", "POST", usage, batch(3, map[int]string{2: event(0, "")}), 400, "events[2].event_id"},
		{"batch with the last event bad", "POST", usage, batch(jobs.MaxBatchEvents, map[int]string{999: `{"event_id":"e999"}`}), 400, "events[999].amount"},
		{"hold amount as a number", "POST", "/v1/orgs/" + a + "/holds", `{"hold_id":"h1","amount":5,"ttl_seconds":60}`, 400, "amount"},
		{"hold without amount", "POST", "/v1/orgs/" + a + "/holds", `{"hold_id":"h1","ttl_seconds":60}`, 400, "amount"},
		{"hold without ttl", "POST", "/v1/orgs/" + a + "/holds", `{"hold_id":"h1","amount":"1"}`, 400, "ttl_seconds"},
		{"hold ttl too long", "POST", "/v1/orgs/" + a + "/holds", `{"hold_id":"h1","amount":"1","ttl_seconds":99999999999999}`, 400, "ttl_seconds"},
		{"hold without id", "POST", "/v1/orgs/" + a + "/holds", `{"amount":"1","ttl_seconds":60}`, 400, "hold_id"},
		{"hold with unknown field", "POST", "/v1/orgs/" + a + "/holds", `{"hold_id":"h1","amount":"1","ttl_seconds":60,"ttl":1}`, 400, "ttl"},
		{"capture without amount", "POST", "/v1/orgs/" + a + "/holds/held/capture", `{}`, 400, "amount"},
		{"capture with four decimals", "POST", "/v1/orgs/" + a + "/holds/held/capture", `{"amount":"0.0001"}`, 400, "amount"},
		{"release with a body", "POST", "/v1/orgs/" + a + "/holds/held/release", `{"amount":"1"}`, 400, "amount"},
		{"balance at a bad time", "GET", "/v1/orgs/" + a + "/balance?at=yesterday", "", 400, "at"},
		{"balance with an unknown parameter", "GET", "/v1/orgs/" + a + "/balance?bogus=1", "", 400, "bogus"},
		{"balance with at twice", "GET", "/v1/orgs/" + a + "/balance?at=2026-01-01T00:00:00Z&at=2026-01-02T00:00:00Z", "", 400, "at"},
		{"history limit zero", "GET", "/v1/orgs/" + a + "/history?limit=0", "", 400, "limit"},
		{"history limit past the page size", "GET", fmt.Sprintf("/v1/orgs/%s/history?limit=%d", a, ledger.MaxHistoryPage+1), "", 400, "limit"},
		{"history after negative", "GET", "/v1/orgs/" + a + "/history?after=-1", "", 400, "after"},
		{"bad org id", "GET", "/v1/orgs/no%20spaces/balance", "", 400, "org"},
		{"unknown org usage", "POST", "/v1/orgs/nope/usage", event(1, ""), 404, ""},
		{"unknown org batch", "POST", "/v1/orgs/nope/usage", batch(2, nil), 404, ""},
		{"unknown org balance", "GET", "/v1/orgs/nope/balance", "", 404, ""},
		{"unknown org history", "GET", "/v1/orgs/nope/history", "", 404, ""},
		{"unknown org hold", "POST", "/v1/orgs/nope/holds", `{"hold_id":"h1","amount":"1","ttl_seconds":60}`, 404, ""},
		{"unknown hold capture", "POST", "/v1/orgs/" + a + "/holds/nope/capture", `{"amount":"1"}`, 404, ""},
		{"unknown hold release", "POST", "/v1/orgs/" + a + "/holds/nope/release", "", 404, ""},
		{"wrong method", "GET", usage, "", 405, ""},
		{"unknown route", "GET", "/v1/orgs/" + a + "/nothing", "", 404, ""},
		{"notifications of an unknown org", "GET", "/v1/orgs/nobody-" + e.suffix + "/notifications", "", 404, ""},
		{"notifications limit out of range", "GET", "/v1/orgs/" + a + "/notifications?limit=1001", "", 400, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.rowCounts()
			r := e.do(tc.method, tc.path, tc.body, operator)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.500s", r.status, tc.status, r.body)
			}
			body := r.errorBody(t)
			if body.Field != tc.field {
				t.Errorf("field = %q, want %q (%s)", body.Field, tc.field, body.Error)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if after := e.rowCounts(); after != before {
				t.Errorf("the database changed: %s -> %s", before, after)
			}
			if tasks := e.tasksOf(a); len(tasks) != 0 {
				t.Fatalf("%d tasks enqueued for a refused request", len(tasks))
			}
		})
	}
}

func testUsageSingle(t *testing.T, e *env) {
	a := e.org("a", "10")
	for _, tc := range []struct {
		name, body string
		want       jobs.UsagePayload
	}{
		{"amount", `{"event_id":"e1","amount":"2.5","team":"red","user":"u1","occurred_at":"2026-03-01T12:00:00+02:00","metadata":{"model":"m1"}}`,
			jobs.UsagePayload{EventID: "e1", Amount: ptr("2.5"), Team: "red", User: "u1",
				OccurredAt: ptr(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), Metadata: json.RawMessage(`{"model":"m1"}`)}},
		{"feature and units", `{"event_id":"e2","feature":"microservice","units":3}`,
			jobs.UsagePayload{EventID: "e2", Feature: "microservice", Units: 3}},
		{"runs", `{"event_id":"e3","runs":120,"feature":"custom_query"}`,
			jobs.UsagePayload{EventID: "e3", Runs: 120, Feature: "custom_query"}},
		{"org_id of the path", `{"org_id":"` + a + `","event_id":"e4","amount":"1"}`,
			jobs.UsagePayload{EventID: "e4", Amount: ptr("1")}},
		{"null metadata", `{"event_id":"e5","amount":"1","metadata":null}`,
			jobs.UsagePayload{EventID: "e5", Amount: ptr("1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/orgs/"+a+"/usage", tc.body, operator)
			var got struct {
				Enqueued int `json:"enqueued"`
			}
			r.decode(t, &got)
			if r.status != http.StatusAccepted || got.Enqueued != 1 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			info, err := e.insp.GetTaskInfo(jobs.QueueUsage, jobs.UsageTaskID(a, tc.want.EventID))
			if err != nil {
				t.Fatal(err)
			}
			var p jobs.UsagePayload
			if err := json.Unmarshal(info.Payload, &p); err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Version, want.OrgID = jobs.UsagePayloadVersion, a
			if info.Type != jobs.TypeUsage || info.State != asynq.TaskStatePending || !reflect.DeepEqual(p, want) {
				t.Fatalf("task %s %s %s, want %s", info.Type, info.State, info.Payload, mustJSON(want))
			}
		})
	}
	// Sent again (a client retrying after a timeout): accepted, still one task.
	if r := e.do("POST", "/v1/orgs/"+a+"/usage", `{"event_id":"e2","feature":"microservice","units":3}`, operator); r.status != 202 {
		t.Fatalf("repeat: %d %s", r.status, r.body)
	}
	if n := len(e.tasksOf(a)); n != 5 {
		t.Fatalf("%d tasks, want 5", n)
	}
}

func testUsageBatch(t *testing.T, e *env) {
	a := e.org("a", "10")
	member, _ := e.token(a, ledger.RoleMember)
	body := `{"events":[{"event_id":"b1","amount":"1"},{"event_id":"b2","feature":"microservice","units":2,"team":"red"},` +
		`{"event_id":"b3","runs":5,"occurred_at":"2026-03-01T00:00:00Z"}]}`
	r := e.do("POST", "/v1/orgs/"+a+"/usage", body, bearer(member))
	if r.status != http.StatusAccepted || strings.TrimSpace(string(r.body)) != `{"enqueued":3}` {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	tasks := e.tasksOf(a)
	if len(tasks) != 1 || tasks[0].Type != jobs.TypeUsageBatch {
		t.Fatalf("tasks = %v", tasks)
	}
	var p jobs.UsageBatchPayload
	if err := json.Unmarshal(tasks[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	v := jobs.UsagePayloadVersion
	want := jobs.UsageBatchPayload{Version: jobs.UsageBatchPayloadVersion, Events: []jobs.UsagePayload{
		{Version: v, OrgID: a, EventID: "b1", Amount: ptr("1")},
		{Version: v, OrgID: a, EventID: "b2", Feature: "microservice", Units: 2, Team: "red"},
		{Version: v, OrgID: a, EventID: "b3", Runs: 5, OccurredAt: ptr(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))},
	}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("payload %s, want %s", tasks[0].Payload, mustJSON(want))
	}

	// A full batch is one task.
	evs := make([]string, jobs.MaxBatchEvents)
	for i := range evs {
		evs[i] = fmt.Sprintf(`{"event_id":"full-%d","amount":"0.001"}`, i)
	}
	r = e.do("POST", "/v1/orgs/"+a+"/usage", `{"events":[`+strings.Join(evs, ",")+`]}`, operator)
	if r.status != http.StatusAccepted || strings.TrimSpace(string(r.body)) != fmt.Sprintf(`{"enqueued":%d}`, jobs.MaxBatchEvents) {
		t.Fatalf("full batch: %d %.300s", r.status, r.body)
	}
	if n := len(e.tasksOf(a)); n != 2 {
		t.Fatalf("%d tasks, want 2", n)
	}
}

type holdResult struct {
	Org          string  `json:"org"`
	HoldID       string  `json:"hold_id"`
	Status       string  `json:"status"`
	Amount       string  `json:"amount"`
	Captured     *string `json:"captured"`
	Debt         string  `json:"debt"`
	ExpiresAt    string  `json:"expires_at"`
	BalanceAfter string  `json:"balance_after"`
	Replayed     bool    `json:"replayed"`
}

func testHolds(t *testing.T, e *env) {
	a := e.org("a", "10")
	holds := "/v1/orgs/" + a + "/holds"
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             holdResult // compared where set
		code             string     // of an error
	}{
		{"reserve", holds, `{"hold_id":"h1","amount":"4","ttl_seconds":60,"feature":"custom_query","team":"red"}`, 201,
			holdResult{HoldID: "h1", Status: "active", Amount: "4.000", BalanceAfter: "6.000"}, ""},
		{"reserve replayed", holds, `{"hold_id":"h1","amount":"4","ttl_seconds":60,"feature":"custom_query","team":"red"}`, 200,
			holdResult{HoldID: "h1", Status: "active", Amount: "4.000", BalanceAfter: "6.000", Replayed: true}, ""},
		{"same hold id, other amount", holds, `{"hold_id":"h1","amount":"5","ttl_seconds":60}`, 409, holdResult{}, "conflict"},
		{"insufficient credits", holds, `{"hold_id":"h2","amount":"7","ttl_seconds":60}`, 409, holdResult{}, "insufficient_credits"},
		{"capture less than held", holds + "/h1/capture", `{"amount":"3"}`, 200,
			holdResult{HoldID: "h1", Status: "captured", Amount: "4.000", Captured: ptr("3.000"), BalanceAfter: "7.000"}, ""},
		{"capture replayed", holds + "/h1/capture", `{"amount":"3"}`, 200,
			holdResult{HoldID: "h1", Status: "captured", Captured: ptr("3.000"), BalanceAfter: "7.000", Replayed: true}, ""},
		{"capture again with another amount", holds + "/h1/capture", `{"amount":"2"}`, 409, holdResult{}, "conflict"},
		{"reserve another", holds, `{"hold_id":"h3","amount":"2","ttl_seconds":3600}`, 201,
			holdResult{HoldID: "h3", Status: "active", BalanceAfter: "5.000"}, ""},
		{"release", holds + "/h3/release", "", 200, holdResult{HoldID: "h3", Status: "released", BalanceAfter: "7.000"}, ""},
		{"release again", holds + "/h3/release", "{}", 200, holdResult{HoldID: "h3", Status: "released", BalanceAfter: "7.000"}, ""},
		{"capture a released hold", holds + "/h3/capture", `{"amount":"1"}`, 409, holdResult{}, "conflict"},
		{"release a captured hold", holds + "/h1/release", "", 409, holdResult{}, "conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", tc.path, tc.body, operator)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != "" {
				body := r.errorBody(t)
				if body.Code != tc.code {
					t.Fatalf("code %q, want %q: %s", body.Code, tc.code, r.body)
				}
				if tc.code == "insufficient_credits" && (body.Error != "insufficient credits" || !strings.Contains(body.Detail, "6.000 available")) {
					t.Fatalf("insufficient credits answer: %s", r.body)
				}
				return
			}
			var got holdResult
			r.decode(t, &got)
			w := tc.want
			if got.Org != a || got.HoldID != w.HoldID || got.Status != w.Status || got.BalanceAfter != w.BalanceAfter ||
				got.Replayed != w.Replayed || (w.Amount != "" && got.Amount != w.Amount) ||
				(w.Captured != nil && (got.Captured == nil || *got.Captured != *w.Captured)) {
				t.Fatalf("hold = %+v, want %+v", got, w)
			}
			if _, err := time.Parse(time.RFC3339, got.ExpiresAt); err != nil {
				t.Errorf("expires_at %q: %v", got.ExpiresAt, err)
			}
		})
	}
	bal, err := e.l.Balance(e.ctx, e.pool, a)
	if err != nil {
		t.Fatal(err)
	}
	if bal.Available != credits.MustParse("7") || bal.Held != 0 {
		t.Fatalf("balance = %+v", bal)
	}
	e.verify()
}

func testBalanceAndHistory(t *testing.T, e *env) {
	a := e.org("a", "10")
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	e.tx(func(tx pgx.Tx) error {
		_, err := e.l.Grant(e.ctx, tx, ledger.Grant{OrgID: a, Amount: credits.MustParse("5"), Source: ledger.SourcePromo, Key: "promo", ExpiresAt: &expires})
		return err
	})
	for i := range 5 {
		e.tx(func(tx pgx.Tx) error {
			_, err := e.l.RecordUsage(e.ctx, tx, []ledger.UsageEvent{{OrgID: a, EventID: fmt.Sprintf("u%d", i), Amount: ptr(credits.MustParse("0.5")), Team: "red"}})
			return err
		})
	}
	at := time.Now().UTC().Add(time.Minute).Truncate(time.Second)
	want, err := e.l.BalanceAt(e.ctx, e.pool, a, at)
	if err != nil {
		t.Fatal(err)
	}
	// The same document `creditd balance ORG --at TIME --json` prints.
	r := e.do("GET", "/v1/orgs/"+a+"/balance?at="+at.Format(time.RFC3339), "", operator)
	if r.status != 200 || !sameJSON(t, r.body, mustJSON(want)) {
		t.Fatalf("balance %d: %s\nwant %s", r.status, r.body, mustJSON(want))
	}
	var bal map[string]any
	r = e.do("GET", "/v1/orgs/"+a+"/balance", "", operator)
	r.decode(t, &bal)
	if bal["org"] != a || bal["available"] != "12.500" || bal["held"] != "0.000" || bal["debt"] != "0.000" || bal["paused"] != false {
		t.Fatalf("balance now: %s", r.body)
	}
	lots, _ := bal["lots"].([]any)
	if len(lots) != 2 {
		t.Fatalf("lots: %s", r.body)
	}
	for _, l := range lots {
		lot := l.(map[string]any)
		for _, k := range []string{"id", "source", "amount", "remaining", "granted_at", "expires_at"} {
			if _, ok := lot[k]; !ok {
				t.Errorf("lot without %q: %v", k, lot)
			}
		}
	}

	// History: the CLI's document, paged.
	all, err := e.l.History(e.ctx, e.pool, a, 0, ledger.MaxHistoryPage)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 {
		t.Fatalf("%d entries", len(all))
	}
	r = e.do("GET", "/v1/orgs/"+a+"/history", "", operator)
	if r.status != 200 || !sameJSON(t, r.body, mustJSON(ledger.HistoryPage{Entries: all})) {
		t.Fatalf("history: %s", r.body)
	}
	var got []ledger.Entry
	after := "0"
	for pages := 0; ; pages++ {
		if pages > 4 {
			t.Fatal("paging does not end")
		}
		var page ledger.HistoryPage
		r := e.do("GET", "/v1/orgs/"+a+"/history?limit=3&after="+after, "", operator)
		r.decode(t, &page)
		got = append(got, page.Entries...)
		if page.NextAfter == nil {
			break
		}
		if len(page.Entries) != 3 || *page.NextAfter != page.Entries[2].ID {
			t.Fatalf("page: %s", r.body)
		}
		after = fmt.Sprint(*page.NextAfter)
	}
	if !sameJSON(t, []byte(mustJSON(got)), mustJSON(all)) {
		t.Fatalf("pages joined:\n%s\nwant\n%s", mustJSON(got), mustJSON(all))
	}
	empty := e.org("empty", "")
	r = e.do("GET", "/v1/orgs/"+empty+"/history", "", operator)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"entries":[]}` {
		t.Fatalf("empty history: %s", r.body)
	}
}

func testMetricsAndLogs(t *testing.T, e *env) {
	a := e.org("a", "10")
	member, _ := e.token(a, ledger.RoleMember)
	e.do("GET", "/v1/orgs/"+a+"/balance", "", bearer(member))
	e.do("GET", "/v1/orgs/"+a+"/balance", "", noAuth)
	if r := e.do("POST", "/v1/orgs/"+a+"/usage", `{"event_id":"m1","amount":"1","metadata":{"k":"body-secret"}}`, bearer(member)); r.status != 202 {
		t.Fatalf("usage: %d %s", r.status, r.body)
	}
	e.do("GET", "/nothing-here", "", noAuth)
	e.do("BREW", "/healthz", "", noAuth)
	if r := e.do("GET", "/healthz", "", noAuth); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	r := e.do("GET", "/metrics", "", noAuth)
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	m := string(r.body)
	for _, want := range []string{
		`creditd_http_requests_total{code="200",method="GET",route="GET /v1/orgs/{org}/balance"} 1`,
		`creditd_http_requests_total{code="401",method="GET",route="GET /v1/orgs/{org}/balance"} 1`,
		`creditd_http_requests_total{code="202",method="POST",route="POST /v1/orgs/{org}/usage"} 1`,
		`creditd_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`creditd_http_requests_total{code="405",method="other",route="unmatched"} 1`,
		`creditd_http_request_duration_seconds_bucket{method="GET",route="GET /v1/orgs/{org}/balance",le="+Inf"} 2`,
		`asynq_tasks_enqueued_total{queue="usage",state="pending"}`,
		`asynq_queue_size{queue="usage"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, a) {
		t.Errorf("/metrics names the org")
	}

	logs := e.logs.String()
	for _, secret := range []string{member, operatorToken, "body-secret", "Authorization", "Bearer"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows %q:\n%s", secret, logs)
		}
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if v["msg"] == "http request" && v["route"] == "POST /v1/orgs/{org}/usage" {
			line = v
		}
	}
	if line == nil || line["status"] != 202.0 || line["method"] != "POST" || line["org"] != a || line["duration"] == nil ||
		!strings.HasPrefix(fmt.Sprint(line["auth"]), "token:") {
		t.Fatalf("request log line = %v", line)
	}
}

func testPanic(t *testing.T, e *env) {
	a := e.org("a", "1")
	r := e.do("GET", "/v1/orgs/"+a+"/panic", "", operator)
	if r.status != 500 || r.errorBody(t).Code != "internal" {
		t.Fatalf("panic: %d %s", r.status, r.body)
	}
	if n := strings.Count(e.logs.String(), "panic serving request"); n != 1 {
		t.Fatalf("the panic was logged %d times:\n%s", n, e.logs.String())
	}
	if !strings.Contains(e.logs.String(), `"status":500`) {
		t.Errorf("the request log does not show the 500:\n%s", e.logs.String())
	}
	if r := e.do("GET", "/v1/orgs/"+a+"/balance", "", operator); r.status != 200 {
		t.Fatalf("after a panic: %d", r.status)
	}
}

func testReadyz(t *testing.T, redisOpt asynq.RedisClientOpt) {
	for _, tc := range []struct {
		name   string
		redis  asynq.RedisClientOpt
		dbDown bool
		status int
		checks map[string]string
	}{
		{"both up", redisOpt, false, 200, map[string]string{"postgres": "ok", "redis": "ok"}},
		{"redis down", asynq.RedisClientOpt{Addr: closedAddr(t)}, false, 503, map[string]string{"postgres": "ok", "redis": "down"}},
		{"postgres down", redisOpt, true, 503, map[string]string{"postgres": "down", "redis": "ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := &envOpts{}
			if tc.dbDown {
				o.dbURL = "postgres://nobody@" + closedAddr(t) + "/none?sslmode=disable&connect_timeout=1"
			}
			e := newEnv(t, tc.redis, o)
			if r := e.do("GET", "/healthz", "", noAuth); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
				t.Fatalf("healthz: %d %s", r.status, r.body)
			}
			start := time.Now()
			r := e.do("GET", "/readyz", "", noAuth)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("readyz took %s", took)
			}
			var got struct {
				Status string            `json:"status"`
				Error  string            `json:"error"`
				Checks map[string]string `json:"checks"`
			}
			r.decode(t, &got)
			if r.status != tc.status || !reflect.DeepEqual(got.Checks, tc.checks) {
				t.Fatalf("readyz %d %s", r.status, r.body)
			}
			for name, state := range tc.checks {
				if state == "down" && !strings.Contains(got.Error, name) {
					t.Errorf("error %q does not name %s", got.Error, name)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func sameJSON(t *testing.T, a []byte, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return reflect.DeepEqual(x, y)
}
