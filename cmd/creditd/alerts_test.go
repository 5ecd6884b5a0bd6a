package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/notify"
)

// redisDBAlerts is the Redis database of the alerts case.
const redisDBAlerts = 3

// testAlerts is what an operator does: configure rules and receivers with
// the CLI, trigger them with usage through a running worker, and find the
// alerts in an SMTP server, a webhook receiver and `creditd notifications`.
func testAlerts(t *testing.T, c *cli) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	smtpSrv := jobstest.NewSMTPServer(t)
	var mu sync.Mutex
	var hooks []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		hooks = append(hooks, string(body))
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)

	c.ok("org", "create", "acme", "--plan", "standard", "--email", "admin@acme.test")
	c.ok("grant", "acme", "100", "--source", "promo", "--key", "p1")
	c.ok("limit", "set", "acme", "--team", "red", "50")

	// Bad rules and receivers: exit 2 naming the field, nothing stored.
	strict := append(c.env[:len(c.env):len(c.env)], config.EnvWebhookAllowPrivate+"=false")
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		field string
	}{
		{"percent over 100", nil, []string{"alert", "add", "acme", "--below-percent", "101"}, "below-percent"},
		{"percent with 3 decimals", nil, []string{"alert", "add", "acme", "--usage-percent", "2.555"}, "usage-percent"},
		{"negative amount", nil, []string{"alert", "add", "acme", "--below", "-5"}, "below"},
		{"unknown team", nil, []string{"alert", "add", "acme", "--usage-percent", "50", "--team", "blue"}, "team"},
		{"team on a balance rule", nil, []string{"alert", "add", "acme", "--below", "5", "--team", "red"}, "team"},
		{"runway days", nil, []string{"alert", "add", "acme", "--runway-days", "0"}, "runway-days"},
		{"invalid webhook URL", nil, []string{"webhook", "add", "acme", "hooks.example.com", "--secret", secret}, "url"},
		{"http when https is required", append(strict, config.EnvWebhookRequireHTTPS+"=true"), []string{"webhook", "add", "acme", "http://hooks.example.com/x", "--secret", secret}, "url"},
		{"loopback address", strict, []string{"webhook", "add", "acme", receiver.URL, "--secret", secret}, "url"},
		{"short secret", nil, []string{"webhook", "add", "acme", "https://hooks.example.com/x", "--secret", "short"}, "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.rowCounts()
			env := c.env
			if tc.env != nil {
				env = tc.env
			}
			r := c.runEnv(env, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, "creditd: "+tc.field+": ") {
				t.Fatalf("exit %d, stderr %q; want 2 naming %s", r.code, r.stderr, tc.field)
			}
			if after := c.rowCounts(); after != before {
				t.Fatalf("rows changed from %s to %s", before, after)
			}
		})
	}
	if r := c.run("alert", "add", "acme", "--below", "5", "--depleted"); r.code != 2 {
		t.Fatalf("two kinds at once: exit %d", r.code)
	}
	if r := c.run("org", "emails", "acme", "--email", "not an address"); r.code != 2 || !strings.Contains(r.stderr, "creditd: email: ") {
		t.Fatalf("org emails with a bad address: exit %d, %q", r.code, r.stderr)
	}
	// Alerts go to the list set now: the second address replaces the first.
	c.ok("org", "emails", "acme", "--email", "ops@acme.test", "--email", "admin@acme.test")
	c.ok("org", "emails", "acme", "--email", "admin@acme.test")

	local := append(c.env[:len(c.env):len(c.env)], config.EnvWebhookAllowPrivate+"=true")
	if r := c.runEnv(local, "webhook", "add", "acme", receiver.URL+"/hooks", "--secret", secret); r.code != 0 {
		t.Fatalf("webhook add: exit %d: %s", r.code, r.stderr)
	}
	var rule struct {
		ID      int64  `json:"id"`
		Kind    string `json:"kind"`
		Amount  string `json:"amount"`
		Created bool   `json:"created"`
	}
	c.json(0, &rule, "alert", "add", "acme", "--below", "60", "--json")
	if rule.Kind != "below" || rule.Amount != "60.000" || !rule.Created {
		t.Fatalf("alert add = %+v", rule)
	}
	c.json(0, &rule, "alert", "add", "acme", "--usage-percent", "80", "--team", "red", "--json")
	var list struct {
		Rules []struct {
			Kind    string `json:"kind"`
			Team    string `json:"team"`
			Percent string `json:"percent"`
			Source  string `json:"source"`
		} `json:"rules"`
	}
	c.json(0, &list, "alert", "list", "acme", "--json")
	if len(list.Rules) != 8 || list.Rules[7].Team != "red" || list.Rules[7].Percent != "80" || list.Rules[0].Source != "default" {
		t.Fatalf("alert list = %+v, want 6 defaults and the 2 added", list.Rules)
	}

	// Trigger: the worker applies usage, evaluates, and delivers.
	c.env = append(c.env, config.EnvSMTPURL+"=smtp://"+smtpSrv.Addr+"?starttls=none", config.EnvSMTPFrom+"=alerts@creditd.test",
		config.EnvWebhookAllowPrivate+"=true", config.EnvLinkBase+"=https://app.example.com")
	c.startWorker(redisDBAlerts)
	c.ok("usage", "acme", "45", "--team", "red", "--event", "e1", "--wait") // 55 left: below 60; red at 90% of 50
	deadline := time.Now().Add(30 * time.Second)
	for len(smtpSrv.Mail()) < 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var ns struct {
		Notifications []struct {
			MessageID  string `json:"message_id"`
			Kind       string `json:"kind"`
			Title      string `json:"title"`
			Message    string `json:"message"`
			Deliveries []struct {
				Channel, Status string
			} `json:"deliveries"`
		} `json:"notifications"`
	}
	c.json(0, &ns, "notifications", "acme", "--json")
	// below 60; usage of team red at 50%, 75%, 90% (defaults) and 80% (its rule), newest first.
	var kinds []string
	for _, n := range ns.Notifications {
		kinds = append(kinds, n.Kind)
		if !strings.Contains(n.Title, "acme") || n.Message == "" || len(n.Deliveries) != 2 {
			t.Errorf("notification %+v", n)
		}
	}
	if strings.Join(kinds, ",") != "usage_percent,usage_percent,usage_percent,usage_percent,below" {
		t.Fatalf("notifications %v", kinds)
	}
	if got := len(smtpSrv.Mail()); got != 5 {
		t.Fatalf("%d emails, want 5", got)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(hooks)
		mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hooks) != 5 {
		t.Fatalf("%d signed webhooks, want 5", len(hooks))
	}
	for _, n := range ns.Notifications {
		found := false
		for _, h := range hooks {
			found = found || strings.Contains(h, n.MessageID)
		}
		if !found {
			t.Errorf("no webhook carried %s", n.MessageID)
		}
	}
	if out := c.ok("notifications", "acme"); !strings.Contains(out, "webhook") || !strings.Contains(out, "delivered") {
		t.Errorf("notifications printed %q", out)
	}
}
