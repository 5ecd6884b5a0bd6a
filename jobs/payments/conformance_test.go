package payments_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/payments"
)

// findStripeMock returns the stripe-mock binary: on PATH, or where `go
// install` puts it; "" when it is not installed.
func findStripeMock(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return ""
	}
	for _, dir := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if dir == "" {
			continue
		}
		if !strings.HasSuffix(dir, "bin") {
			dir = filepath.Join(dir, "bin")
		}
		p := filepath.Join(dir, "stripe-mock")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// startStripeMock runs stripe-mock on free loopback ports for the test and
// returns its HTTP base URL, or skips the test saying why.
func startStripeMock(t *testing.T) string {
	t.Helper()
	bin := findStripeMock(t)
	if bin == "" {
		t.Skip("stripe-mock is not installed, so the requests sent to Stripe were not checked against its OpenAPI spec: " +
			"go install github.com/stripe/stripe-mock@latest (make test does)")
	}
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not say where it listens within 30 s", bin)
	}
	return ""
}

// exchange is one request and the status stripe-mock answered.
type exchange struct {
	method, path string
	status       int
}

// recorder records every exchange of a stripe-go backend.
type recorder struct {
	mu  sync.Mutex
	log []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, exchange{req.Method, req.URL.Path, resp.StatusCode})
	return resp, nil
}

// TestStripeMock_AcceptsOurRequests sends every request creditd makes to
// Stripe, through the real code, to stripe-mock, which validates each
// against Stripe's OpenAPI spec: the off-session charge, the
// reconciliation's listing (with its created filter and paging) and its
// read of one payment. stripe-mock is stateless (its PaymentIntents never
// succeed), so only the requests' acceptance is checked; what Stripe does
// with them is the fake's part (stripefake).
func TestStripeMock_AcceptsOurRequests(t *testing.T) {
	t.Parallel()
	base := startStripeMock(t)
	rec := &recorder{}
	s := payments.NewStripeWithBackend("sk_test_123", stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(base), HTTPClient: &http.Client{Transport: rec, Timeout: 30 * time.Second},
		MaxNetworkRetries: stripe.Int64(0), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}))
	ctx := context.Background()

	_, err := s.ChargeOffSession(ctx, jobs.Charge{IdempotencyKey: "rch_0123456789abcdef01234567", Customer: "cus_123", PaymentMethod: "pm_123",
		AmountMinor: 100_00, Currency: "USD", Description: "creditd auto-recharge: 100.000 credits",
		Metadata: map[string]string{"org_id": "acme", "recharge_attempt": "rch_0123456789abcdef01234567", "credits": "100.000"}})
	// stripe-mock answers with a PaymentIntent that is not succeeded, which
	// the charger reports as needing the customer; a rejected request would
	// be a Stripe error instead.
	var declined *jobs.ChargeDeclined
	if err != nil && (!errors.As(err, &declined) || declined.Code != "authentication_required") {
		t.Fatalf("charge: %v", err)
	}
	if _, _, err := s.ListPaymentIntents(ctx, "cus_123", time.Now().Add(-72*time.Hour), 5); err != nil {
		t.Fatalf("list: %v", err)
	}
	if _, err := s.GetPaymentIntent(ctx, "pi_123"); err != nil {
		t.Fatalf("get: %v", err)
	}

	want := []exchange{
		{http.MethodPost, "/v1/payment_intents", http.StatusOK},
		{http.MethodGet, "/v1/payment_intents", http.StatusOK},
		{http.MethodGet, "/v1/payment_intents/pi_123", http.StatusOK},
	}
	rec.mu.Lock()
	if len(rec.log) != len(want) {
		t.Fatalf("exchanges %+v, want %+v", rec.log, want)
	}
	for i, w := range want {
		if rec.log[i] != w {
			t.Errorf("exchange %d = %+v, want %+v", i, rec.log[i], w)
		}
	}
	rec.log = nil
	rec.mu.Unlock()

	// The auto-pay invoice: create (and its line, where stripe-mock's draft
	// has none), then read, finalize and pay. Which of these follow depends
	// on the fixture's status, so each must be accepted and the create and
	// the read must be among them.
	in := jobs.StripeInvoice{IdempotencyKey: "invoice:acme:2026-11", Customer: "cus_123", PaymentMethod: "pm_123",
		AmountMinor: 45_00, Currency: "USD", Description: "creditd professional plan, 2026-11",
		Metadata: map[string]string{"org_id": "acme", "period": "2026-11"}}
	id, err := s.CreateInvoice(ctx, in)
	if err != nil {
		t.Fatalf("create invoice: %v", err)
	}
	if err := s.PayInvoice(ctx, id, in); err != nil && !errors.As(err, &declined) {
		t.Fatalf("pay invoice %s: %v", id, err) // a declined stateless payment is fine; a refused request is not
	}
	rec.mu.Lock()
	t.Logf("invoice exchanges: %+v", rec.log)
	seen := map[string]bool{}
	for _, x := range rec.log {
		if x.status != http.StatusOK {
			t.Errorf("stripe-mock refused %s %s: %d", x.method, x.path, x.status)
		}
		seen[x.method+" "+x.path] = true
	}
	if !seen["POST /v1/invoices"] || !seen["GET /v1/invoices/"+id] {
		t.Errorf("invoice exchanges %+v, want the create and the read of %s", rec.log, id)
	}
	rec.mu.Unlock()
}
