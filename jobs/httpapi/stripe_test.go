package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/creditd/creditd/jobs"
)

func testStripeWebhook(t *testing.T, e *env) {
	id := "evt_" + e.suffix
	payload := []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"payment_intent.succeeded","api_version":"2023-10-16",`+
		`"data":{"object":{"id":"pi_1","object":"payment_intent","amount":2000,"currency":"usd","metadata":{"org_id":"x"}}}}`, id))
	sign := func(body []byte, secret string, at time.Time) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
	}
	stored := func() int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(e.ctx, `SELECT count(*) FROM stripe_events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	now := time.Now()
	tampered := append([]byte(nil), payload...)
	tampered[len(tampered)-3] = 'y'
	for _, tc := range []struct {
		name, sig string
		body      []byte
	}{
		{"unsigned", "", payload},
		{"wrong secret", sign(payload, "whsec_other_secret_0000000", now), payload},
		{"stale", sign(payload, stripeSecret, now.Add(-10*time.Minute)), payload},
		{"tampered body", sign(payload, stripeSecret, now), tampered},
		{"not JSON", sign([]byte("hello"), stripeSecret, now), []byte("hello")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := []string{}
			if tc.sig != "" {
				headers = append(headers, "Stripe-Signature", tc.sig)
			}
			got := e.do("POST", "/stripe/webhook", string(tc.body), noAuth, headers...)
			if got.status != http.StatusBadRequest || got.errorBody(t).Field != "Stripe-Signature" {
				t.Fatalf("= %d %s, want 400 naming Stripe-Signature", got.status, got.body)
			}
			if n := stored(); n != 0 {
				t.Fatalf("%d events stored", n)
			}
		})
	}
	for i := range 5 {
		got := e.do("POST", "/stripe/webhook", string(payload), noAuth, "Stripe-Signature", sign(payload, stripeSecret, time.Now()))
		want := fmt.Sprintf(`{"duplicate":%v,"received":true}`, i > 0)
		if got.status != http.StatusOK || string(got.body) != want+"\n" {
			t.Fatalf("delivery %d = %d %s, want 200 %s", i, got.status, got.body, want)
		}
	}
	if n := stored(); n != 1 {
		t.Fatalf("%d events stored after 5 deliveries, want 1", n)
	}
	info, err := e.insp.GetTaskInfo(jobs.QueuePayments, jobs.TypeStripeEvent+":"+id)
	if err != nil || info.Type != jobs.TypeStripeEvent {
		t.Fatalf("task %+v, %v; want one stripe:event task", info, err)
	}
}
