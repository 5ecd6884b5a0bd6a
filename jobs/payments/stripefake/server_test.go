package stripefake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

// rawError is Stripe's error envelope.
type rawError struct {
	Error struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a raw request and decodes a JSON answer.
func do(t *testing.T, req *http.Request, into any) *http.Response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", req.Method, req.URL.Path, body, err)
	}
	return res
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	return req
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	tests := []struct {
		name   string
		header string
	}{
		{name: "no key"},
		{name: "live key", header: "Bearer sk_live_0123456789abcdef"},
		{name: "publishable key", header: "Bearer pk_test_0123456789abcdef"},
		{name: "bare prefix", header: "Bearer sk_test_"},
		{name: "basic auth", header: "Basic c2tfdGVzdF94Og=="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := newRequest(t, http.MethodGet, s.URL+"/v1/customers/cus_1", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			var e rawError
			res := do(t, req, &e)
			if res.StatusCode != http.StatusUnauthorized || e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
				t.Errorf("got %d %+v, want 401 invalid_request_error", res.StatusCode, e)
			}
		})
	}
	t.Run("through stripe-go", func(t *testing.T) {
		t.Parallel()
		_, err := apiFor(t, "sk_live_0123456789abcdef", s.Backend()).Customers.Get("cus_1", nil)
		if se := asStripeError(t, err); se.HTTPStatusCode != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", se.HTTPStatusCode)
		}
	})
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	tests := []struct{ method, path string }{
		{http.MethodGet, "/v1/charges/ch_1"},
		{http.MethodDelete, "/v1/customers/cus_1"},
		{http.MethodPost, "/v1/payment_intents/pi_1/confirm"},
		{http.MethodGet, "/v1/customers/"},
		{http.MethodGet, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			req := newRequest(t, tt.method, s.URL+tt.path, nil)
			req.Header.Set("Authorization", "Bearer "+testKey)
			var e rawError
			res := do(t, req, &e)
			if res.StatusCode != http.StatusNotFound || e.Error.Type != "invalid_request_error" ||
				!strings.HasPrefix(e.Error.Message, "Unrecognized request URL") {
				t.Errorf("got %d %+v, want a Stripe-shaped 404", res.StatusCode, e)
			}
		})
	}
	t.Run("through stripe-go", func(t *testing.T) {
		t.Parallel()
		_, err := newAPI(t, s).Charges.Get("ch_1", nil)
		if se := asStripeError(t, err); se.HTTPStatusCode != http.StatusNotFound || se.Type != stripe.ErrorTypeInvalidRequest {
			t.Errorf("error = %d %s, want 404 invalid_request_error", se.HTTPStatusCode, se.Type)
		}
	})
	t.Run("unknown object", func(t *testing.T) {
		t.Parallel()
		_, err := newAPI(t, s).PaymentIntents.Get("pi_missing", nil)
		if se := asStripeError(t, err); se.HTTPStatusCode != http.StatusNotFound || se.Code != stripe.ErrorCodeResourceMissing {
			t.Errorf("error = %d %s, want 404 resource_missing", se.HTTPStatusCode, se.Code)
		}
	})
}

func TestRequests_RecordWhatStripeGoSends(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")

	p := recharge(cus, pm, 2500, "recharge:acme:9")
	p.AddExpand("latest_charge")
	if _, err := api.PaymentIntents.New(p); err != nil {
		t.Fatalf("create PaymentIntent: %v", err)
	}
	if _, err := api.Customers.New(&stripe.CustomerParams{Name: stripe.String("no key given")}); err != nil {
		t.Fatalf("create customer: %v", err)
	}
	it := api.PaymentIntents.List(&stripe.PaymentIntentListParams{Customer: stripe.String(cus)})
	for it.Next() {
	}
	if err := it.Err(); err != nil {
		t.Fatalf("list: %v", err)
	}

	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3: %+v", len(reqs), reqs)
	}
	create := reqs[0]
	if create.Method != http.MethodPost || create.Path != "/v1/payment_intents" || create.IdempotencyKey != "recharge:acme:9" ||
		create.Form.Get("metadata[org_id]") != "acme" || create.Form.Get("expand[0]") != "latest_charge" ||
		create.Form.Get("off_session") != "true" || create.Form.Get("amount") != "2500" || create.Status != http.StatusOK {
		t.Errorf("create request = %+v", create)
	}
	// stripe-go gives every POST an idempotency key of its own.
	if reqs[1].IdempotencyKey == "" {
		t.Errorf("POST without SetIdempotencyKey carried no Idempotency-Key")
	}
	if reqs[2].Method != http.MethodGet || reqs[2].Form.Get("customer") != cus || reqs[2].IdempotencyKey != "" {
		t.Errorf("list request = %+v", reqs[2])
	}
}

func TestRawRequests(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")

	t.Run("chunked body with expand[]", func(t *testing.T) {
		t.Parallel()
		form := "amount=700&currency=usd&confirm=true&off_session=true&customer=" + cus + "&payment_method=" + pm +
			"&metadata[org_id]=acme&expand[]=customer"
		// An io.Reader of unknown length makes net/http send the body chunked.
		req := newRequest(t, http.MethodPost, s.URL+"/v1/payment_intents", io.MultiReader(strings.NewReader(form)))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Stripe-Version", stripe.APIVersion)
		var pi stripe.PaymentIntent
		res := do(t, req, &pi)
		if res.StatusCode != http.StatusOK || pi.Status != stripe.PaymentIntentStatusSucceeded ||
			pi.Customer == nil || pi.Customer.Object != "customer" || pi.Metadata["org_id"] != "acme" {
			t.Errorf("got %d %+v", res.StatusCode, pi)
		}
		if got := res.Header.Get("Request-Id"); !strings.HasPrefix(got, "req_") {
			t.Errorf("Request-Id = %q", got)
		}
	})
	t.Run("other API version", func(t *testing.T) {
		t.Parallel()
		req := newRequest(t, http.MethodGet, s.URL+"/v1/customers/"+cus, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Stripe-Version", "2024-06-20")
		var e rawError
		if res := do(t, req, &e); res.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error.Message, stripe.APIVersion) {
			t.Errorf("got %d %+v, want 400 naming %s", res.StatusCode, e, stripe.APIVersion)
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		t.Parallel()
		req := newRequest(t, http.MethodPost, s.URL+"/v1/customers", strings.NewReader(`{"name":"x"}`))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		var e rawError
		if res := do(t, req, &e); res.StatusCode != http.StatusBadRequest || e.Error.Type != "invalid_request_error" {
			t.Errorf("got %d %+v, want 400", res.StatusCode, e)
		}
	})
}
