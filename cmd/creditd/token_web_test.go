package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs/jobstest"
)

// webRedisDB is the Redis database `creditd web` points at in the CLI case.
// It belongs to package jobs/httpapi, whose tests flush and fill it: this
// case only reads it (readiness ping, the UI's page), never writes.
const webRedisDB = 13

// testTokenAndWeb makes org tokens with `creditd token create` and uses them
// against a `creditd web` process: health, readiness, the balance and
// history documents the CLI prints, a hold, the org and role checks, the
// UI's login, and a graceful SIGTERM.
func testTokenAndWeb(t *testing.T, c *cli) {
	c.ok("org", "create", "acme", "--plan", "free")
	c.ok("org", "create", "beta", "--plan", "free")
	c.ok("grant", "acme", "10", "--source", "purchase", "--key", "p1")

	tokens := func() int {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, c.url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM api_tokens`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing role", []string{"token", "create", "acme"}, 2, "role: required"},
		{"unknown role", []string{"token", "create", "acme", "--role", "owner"}, 2, "role: must be member or admin"},
		{"unknown org", []string{"token", "create", "nope", "--role", "member"}, 1, "org nope: not found"},
		{"missing org", []string{"token", "create", "--role", "member"}, 2, "org: required"},
		{"bad org id", []string{"token", "create", "no spaces", "--role", "member"}, 2, "org:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
		})
	}
	if n := tokens(); n != 0 {
		t.Fatalf("refused token requests stored %d tokens", n)
	}

	r := c.run("token", "create", "acme", "--role", "member")
	member := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(member, "cdt_") || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stderr, "shown this once") {
		t.Fatalf("token create: exit %d\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var admin struct {
		Token     string `json:"token"`
		Org       string `json:"org"`
		ID        string `json:"id"`
		Role      string `json:"role"`
		CreatedAt string `json:"created_at"`
	}
	c.json(0, &admin, "token", "create", "acme", "--role", "admin", "--json")
	if !strings.HasPrefix(admin.Token, "cdt_") || admin.Org != "acme" || admin.Role != "admin" || !strings.Contains(admin.Token, admin.ID) {
		t.Fatalf("token create --json = %+v", admin)
	}
	betaMember := strings.TrimSpace(c.ok("token", "create", "beta", "--role", "member"))
	if n := tokens(); n != 3 {
		t.Fatalf("%d tokens stored, want 3", n)
	}

	// A port that is taken is an error at once.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	redisURL := webRedisURL(t)
	env := append(c.env, config.EnvRedisURL+"="+redisURL, config.EnvAPIToken+"=op-token-for-tests")
	if r := c.runEnv(append(env, config.EnvHTTPAddr+"="+busy.Addr().String()), "web"); r.code != 1 || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("web on a taken port: exit %d\n%s", r.code, r.stderr)
	}

	base, stop := startWebProcess(t, c.bin, append(env, config.EnvHTTPAddr+"=127.0.0.1:0"))
	get := func(path string, auth func(*http.Request)) (int, []byte) {
		t.Helper()
		return httpDo(t, "GET", base+path, "", auth)
	}
	withBearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	for _, tc := range []struct {
		name string
		path string
		auth func(*http.Request)
		want int
	}{
		{"healthz", "/healthz", nil, 200},
		{"readyz", "/readyz", nil, 200},
		{"metrics", "/metrics", nil, 200},
		{"balance without a token", "/v1/orgs/acme/balance", nil, 401},
		{"balance with the member token", "/v1/orgs/acme/balance", withBearer(member), 200},
		{"balance of another org", "/v1/orgs/acme/balance", withBearer(betaMember), 403},
		{"balance with the operator token", "/v1/orgs/beta/balance", withBearer("op-token-for-tests"), 200},
		{"the UI without login", "/monitor/", nil, 401},
		{"the UI with the operator token as password", "/monitor/", func(r *http.Request) { r.SetBasicAuth("ops", "op-token-for-tests") }, 200},
		{"the UI with an org token", "/monitor/", func(r *http.Request) { r.SetBasicAuth("ops", admin.Token) }, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := get(tc.path, tc.auth); status != tc.want {
				t.Fatalf("status %d, want %d: %.300s", status, tc.want, body)
			}
		})
	}

	// A hold through the API, then the same documents as the CLI prints.
	status, body := httpDo(t, "POST", base+"/v1/orgs/acme/holds", `{"hold_id":"h1","amount":"4","ttl_seconds":600}`, withBearer(member))
	if status != 201 || !strings.Contains(string(body), `"balance_after":"6.000"`) {
		t.Fatalf("hold: %d %s", status, body)
	}
	status, body = httpDo(t, "POST", base+"/v1/orgs/acme/holds/h1/capture", `{"amount":"1.5"}`, withBearer(member))
	if status != 200 || !strings.Contains(string(body), `"balance_after":"8.500"`) {
		t.Fatalf("capture: %d %s", status, body)
	}
	_, body = get("/v1/orgs/acme/balance", withBearer(member))
	var apiBal map[string]any
	if err := json.Unmarshal(body, &apiBal); err != nil {
		t.Fatal(err)
	}
	delete(apiBal, "at")
	apiJSON, _ := json.Marshal(apiBal)
	if cliJSON := c.balanceWithoutAt("acme"); string(apiJSON) != cliJSON {
		t.Errorf("balance over HTTP differs from the CLI's:\n%s\n%s", apiJSON, cliJSON)
	}
	_, body = get("/v1/orgs/acme/history", withBearer(member))
	var apiHist, cliHist any
	if err := json.Unmarshal(body, &apiHist); err != nil {
		t.Fatal(err)
	}
	c.json(0, &cliHist, "history", "acme", "--json")
	if a, b := mustMarshal(apiHist), mustMarshal(cliHist); a != b {
		t.Errorf("history over HTTP differs from the CLI's:\n%s\n%s", a, b)
	}
	c.json(0, &struct{}{}, "verify", "--json")

	logs := stop()
	for _, secret := range []string{member, admin.Token, "op-token-for-tests"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the web log shows a token:\n%s", logs)
		}
	}
}

// webRedisURL is REDIS_URL with database webRedisDB.
func webRedisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(config.EnvRedisURL)
	if u == "" {
		t.Fatal("REDIS_URL is not set: run the tests with `make test`, which provisions Redis")
	}
	opt, err := asynq.ParseRedisURI(u)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := opt.(asynq.RedisClientOpt)
	if !ok {
		t.Fatalf("REDIS_URL: %T", opt)
	}
	o.DB = webRedisDB
	return jobstest.URL(o)
}

// startWebProcess runs `creditd web` on a port of its choosing and returns its base
// URL once it listens, and a function that stops it with SIGTERM, requires
// a clean exit and returns its log.
func startWebProcess(t *testing.T, bin string, env []string) (string, func() string) {
	t.Helper()
	return startServing(t, bin, env, "web", `"web stopped"`)
}

// startServing runs `creditd COMMAND` (web or all), which logs "web
// listening" with its address, and stops it as startWebProcess does; its log
// must end with the stopped message.
func startServing(t *testing.T, bin string, env []string, command, stopped string) (string, func() string) {
	t.Helper()
	cmd := exec.Command(bin, command)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs strings.Builder
	addr := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			logs.WriteString(line + "\n")
			mu.Unlock()
			var v struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &v) == nil && v.Msg == "web listening" {
				addr <- v.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	exited := make(chan error, 1)
	go func() { <-copied; exited <- cmd.Wait() }()
	logText := func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
	select {
	case a := <-addr:
		done := false
		stop := func() string {
			if done {
				return logText()
			}
			done = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("creditd %s: %v\n%s", command, err, logText())
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("creditd %s did not stop on SIGTERM\n%s", command, logText())
			}
			if !strings.Contains(logText(), stopped) {
				t.Errorf("no clean stop in the log:\n%s", logText())
			}
			return logText()
		}
		t.Cleanup(func() { stop() })
		return "http://" + a, stop
	case err := <-exited:
		t.Fatalf("creditd %s exited: %v\n%s", command, err, logText())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("creditd %s did not start listening\n%s", command, logText())
	}
	return "", nil
}

func httpDo(t *testing.T, method, url, body string, auth func(*http.Request)) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
