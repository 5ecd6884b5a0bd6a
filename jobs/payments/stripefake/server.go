package stripefake

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

const (
	// maxBodyBytes bounds a request body; stripe-go's largest requests here
	// are a few hundred bytes.
	maxBodyBytes = 1 << 20
	// maxHold bounds how long FaultTimeout holds a request whose client never
	// gives up, so a test without a client timeout fails instead of hanging.
	maxHold = 30 * time.Second
)

// Server is a running fake of the Stripe API. Its methods are safe for
// concurrent use; requests are served one at a time.
type Server struct {
	// URL is the fake's base URL (http://127.0.0.1:port), what stripe-go
	// takes as its backend URL and creditd as STRIPE_API_BASE.
	URL string

	errorf    func(format string, args ...any) // reports a misuse of the fake
	ts        *httptest.Server
	closing   chan struct{}
	closeOnce sync.Once
	routes    []route

	mu             sync.Mutex
	now            func() time.Time
	seq            int64
	faults         []*faultRule
	requests       []Request
	idem           map[idemKey]*idemEntry
	customers      map[string]*customer
	paymentMethods map[string]*paymentMethod
	paymentIntents map[string]*paymentIntent
	charges        map[string]*charge
	refunds        map[string]*refund
	invoiceItems   map[string]*invoiceItem
	invoices       map[string]*invoice
}

// Request is one HTTP request the fake received, as it understood it.
type Request struct {
	Method string
	Path   string
	// Form holds the parameters: the body of a POST, the query of a GET.
	Form           url.Values
	IdempotencyKey string
	// Replayed is true when the response came from the idempotency store.
	Replayed bool
	// Status is the HTTP status sent, 0 when no response was sent
	// (FaultTimeout, FaultDropResponse, FaultHoldResponse).
	Status int
	// Fault is the fault this request took, FaultNone if it took none.
	Fault Fault
}

// idemKey scopes idempotency keys to the API key, as Stripe does.
type idemKey struct {
	apiKey string
	key    string
}

// idemEntry is a stored first response, replayed to later requests with the
// same key and fingerprint.
type idemEntry struct {
	fingerprint string
	requestID   string
	status      int
	body        []byte
}

// response is what the fake answers, or how it fails to answer (drop).
type response struct {
	status int
	header http.Header
	body   []byte
	// drop is FaultTimeout, FaultDropResponse or FaultHoldResponse when no
	// response is sent.
	drop Fault
}

// New starts a fake on 127.0.0.1 with an ephemeral port and closes it when
// the test ends. A misuse of the fake fails the test.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := newServer(tb.Errorf)
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.ts.URL
	tb.Cleanup(s.Close)
	return s
}

// Listen starts a fake on addr (host:port; port 0 picks one) outside a
// test, for a standalone process (cmd/stripefake): misuses are reported to
// errorf. Stop it with Close.
func Listen(addr string, errorf func(format string, args ...any)) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stripefake: %w", err)
	}
	s := newServer(errorf)
	s.ts = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}}
	s.ts.Start()
	s.URL = s.ts.URL
	return s, nil
}

func newServer(errorf func(format string, args ...any)) *Server {
	s := &Server{
		errorf:         errorf,
		closing:        make(chan struct{}),
		now:            time.Now,
		idem:           map[idemKey]*idemEntry{},
		customers:      map[string]*customer{},
		paymentMethods: map[string]*paymentMethod{},
		paymentIntents: map[string]*paymentIntent{},
		charges:        map[string]*charge{},
		refunds:        map[string]*refund{},
		invoiceItems:   map[string]*invoiceItem{},
		invoices:       map[string]*invoice{},
	}
	s.routes = s.routeTable()
	return s
}

// Close stops the fake. It releases requests held by FaultTimeout and
// FaultHoldResponse first: httptest.Server.Close waits for every active
// request. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.ts.Close()
	})
}

// Backend returns a stripe-go backend pointed at the fake, with stripe-go's
// own network retries off so that every retry a test sees is one the code
// under test made, and with stripe-go's logging off. For other settings (an
// HTTP client with a timeout, say) call stripe.GetBackendWithConfig with URL
// set to s.URL.
func (s *Server) Backend() stripe.Backend {
	return stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(s.URL),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
}

// SetClock replaces the clock that stamps created, finalized and paid times
// (time.Now by default; nil restores it), so that tests of time windows such
// as the reconciliation sweep's created[gte] are deterministic.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// ExpireIdempotencyKeys forgets every stored idempotency key, as Stripe does
// after 24 hours: a request with an old key then runs again for real.
func (s *Server) ExpireIdempotencyKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.idem)
}

// Requests returns a copy of every request received so far, in the order they
// were served.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Form = cloneValues(r.Form)
		out[i] = r
	}
	return out
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	form, formErr := readForm(w, r)

	s.mu.Lock()
	req := Request{
		Method:         r.Method,
		Path:           r.URL.Path,
		Form:           form,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	}
	requestID := "req_" + randomID()
	res := s.dispatch(r, &req, formErr, requestID)
	if res.drop == FaultNone {
		req.Status = res.status
	}
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	switch res.drop {
	case FaultTimeout, FaultHoldResponse:
		hold := time.NewTimer(maxHold)
		defer hold.Stop()
		select {
		case <-r.Context().Done():
		case <-s.closing:
		case <-hold.C:
		}
		dropConnection(w)
	case FaultDropResponse:
		dropConnection(w)
	default:
		h := w.Header()
		for k, v := range res.header {
			h[k] = v
		}
		h.Set("Content-Type", "application/json")
		h.Set("Stripe-Version", stripe.APIVersion)
		h.Set("Request-Id", requestID)
		if req.IdempotencyKey != "" {
			h.Set("Idempotency-Key", req.IdempotencyKey)
		}
		w.WriteHeader(res.status)
		// A write error means the client went away; there is no one to tell.
		_, _ = w.Write(res.body)
	}
}

// dispatch authenticates, routes, applies faults and idempotency, and runs
// the endpoint. It runs with s.mu held.
func (s *Server) dispatch(r *http.Request, req *Request, formErr error, requestID string) response {
	if formErr != nil {
		return errorResponse(invalidRequest(http.StatusBadRequest, "", "", formErr.Error()))
	}
	apiKey, aerr := authenticate(r.Header.Get("Authorization"))
	if aerr != nil {
		return errorResponse(aerr)
	}
	h, id := s.match(r.Method, r.URL.Path)
	if h == nil {
		return errorResponse(invalidRequest(http.StatusNotFound, "", "", fmt.Sprintf(
			"Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
			r.Method, r.URL.Path)))
	}
	if v := r.Header.Get("Stripe-Version"); v != "" && v != stripe.APIVersion {
		return errorResponse(invalidRequest(http.StatusBadRequest, "", "", fmt.Sprintf(
			"Invalid Stripe API version: %s (this fake speaks only %s, the version of stripe-go v76)", v, stripe.APIVersion)))
	}

	c := &call{s: s, form: req.Form, id: id, req: req}
	if rule := s.nextFault(req.Path); rule != nil {
		if rule.fault.chargeOnly() {
			c.chargeRule = rule
		} else {
			s.consumeFault(rule)
			req.Fault = rule.fault
		}
	}
	switch req.Fault {
	case Fault500:
		return errorResponse(&apiError{status: http.StatusInternalServerError, body: errorBody{
			Type:    string(stripe.ErrorTypeAPI),
			Message: "An unknown error occurred",
		}})
	case Fault429:
		return errorResponse(invalidRequest(http.StatusTooManyRequests, string(stripe.ErrorCodeRateLimit), "",
			"Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."))
	case FaultTimeout:
		return response{drop: FaultTimeout}
	}

	idempotent := r.Method == http.MethodPost && req.IdempotencyKey != ""
	key := idemKey{apiKey: apiKey, key: req.IdempotencyKey}
	fp := fingerprint(r.Method, req.Path, req.Form)
	if idempotent {
		if e, ok := s.idem[key]; ok {
			if e.fingerprint != fp {
				return errorResponse(&apiError{status: http.StatusBadRequest, body: errorBody{
					Type: string(stripe.ErrorTypeIdempotency),
					Message: "Keys for idempotent requests can only be used with the same parameters they were first used with. " +
						"Try using a key other than '" + req.IdempotencyKey + "' if you meant to execute a different request.",
				}})
			}
			req.Replayed = true
			res := response{status: e.status, body: e.body, header: http.Header{}}
			res.header.Set("Idempotent-Replayed", "true")
			res.header.Set("Original-Request", e.requestID)
			if req.Fault == FaultDropResponse || req.Fault == FaultHoldResponse {
				res.drop = req.Fault
			}
			return res
		}
	}

	obj, aerr := h(c)
	var res response
	if aerr == nil {
		res, aerr = s.render(obj, c.list("expand"))
	}
	if aerr != nil {
		res = errorResponse(aerr)
	}
	if idempotent && (aerr == nil || !aerr.validation) {
		s.idem[key] = &idemEntry{fingerprint: fp, requestID: requestID, status: res.status, body: res.body}
	}
	if req.Fault == FaultDropResponse || req.Fault == FaultHoldResponse {
		res.drop = req.Fault
	}
	return res
}

// render encodes an API object, expanding the paths the request asked for.
func (s *Server) render(obj any, expand []string) (response, *apiError) {
	v, aerr := s.expand(obj, expand)
	if aerr != nil {
		return response{}, aerr
	}
	body, err := json.Marshal(v)
	if err != nil {
		// Every object is made of plain structs, maps and slices.
		panic(fmt.Sprintf("stripefake: encode response: %v", err))
	}
	return response{status: http.StatusOK, body: body}, nil
}

func errorResponse(e *apiError) response {
	body, err := json.Marshal(struct {
		Error errorBody `json:"error"`
	}{e.body})
	if err != nil {
		panic(fmt.Sprintf("stripefake: encode error: %v", err))
	}
	res := response{status: e.status, body: body, header: http.Header{}}
	if e.status == http.StatusUnauthorized {
		res.header.Set("Www-Authenticate", `Bearer realm="Stripe"`)
	}
	return res
}

// dropConnection closes the connection without a complete response. It
// writes the start of a status line first: net/http's Transport silently
// resends a request carrying an Idempotency-Key when a reused connection
// closes before any byte of the response, which would hide the lost response
// from the client under test.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("stripefake: response writer cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	_, _ = buf.WriteString("HTTP/1.1 200 OK\r\n")
	_ = buf.Flush()
	_ = conn.Close()
}

// readForm reads the parameters: the query of a GET, the form-encoded body
// of anything else (stripe-go may send it chunked; net/http decodes that).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method == http.MethodGet {
		v, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return url.Values{}, fmt.Errorf("invalid query string: %w", err)
		}
		return v, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return url.Values{}, fmt.Errorf("invalid request body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return url.Values{}, nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return url.Values{}, fmt.Errorf("invalid request: Content-Type must be application/x-www-form-urlencoded, got %q", r.Header.Get("Content-Type"))
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return url.Values{}, fmt.Errorf("invalid request body: %w", err)
	}
	return v, nil
}

// authenticate accepts any test secret key as a Bearer token and returns it.
func authenticate(header string) (string, *apiError) {
	if header == "" {
		return "", invalidRequest(http.StatusUnauthorized, "", "",
			"You did not provide an API key. You need to provide your API key in the Authorization header, "+
				"using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "+
				"or we can help at https://support.stripe.com/.")
	}
	key, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || !strings.HasPrefix(key, "sk_test_") || len(key) == len("sk_test_") {
		return "", invalidRequest(http.StatusUnauthorized, "", "", "Invalid API Key provided: "+redactKey(key))
	}
	return key, nil
}

// redactKey shows a key the way Stripe's errors do: prefix and last four.
func redactKey(key string) string {
	if len(key) <= 12 {
		return strings.Repeat("*", len(key))
	}
	return key[:8] + strings.Repeat("*", len(key)-12) + key[len(key)-4:]
}

// fingerprint identifies a request's parameters for idempotency: same method,
// path and parameters (in any order) is the same request.
func fingerprint(method, path string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(method + " " + path)
	for _, k := range keys {
		for _, v := range form[k] {
			b.WriteString("\n" + url.QueryEscape(k) + "=" + url.QueryEscape(v))
		}
	}
	return b.String()
}

// route is one endpoint; a "{id}" segment matches any one path segment.
type route struct {
	method  string
	pattern string
	handle  func(*call) (any, *apiError)
}

func (s *Server) routeTable() []route {
	return []route{
		{http.MethodPost, "/v1/customers", s.createCustomer},
		{http.MethodGet, "/v1/customers/{id}", s.getCustomer},
		{http.MethodPost, "/v1/customers/{id}", s.updateCustomer},
		{http.MethodPost, "/v1/payment_methods", s.createPaymentMethod},
		{http.MethodGet, "/v1/payment_methods/{id}", s.getPaymentMethod},
		{http.MethodPost, "/v1/payment_methods/{id}/attach", s.attachPaymentMethod},
		{http.MethodPost, "/v1/payment_methods/{id}/detach", s.detachPaymentMethod},
		{http.MethodPost, "/v1/payment_intents", s.createPaymentIntent},
		{http.MethodGet, "/v1/payment_intents", s.listPaymentIntents},
		{http.MethodGet, "/v1/payment_intents/{id}", s.getPaymentIntent},
		{http.MethodPost, "/v1/refunds", s.createRefund},
		{http.MethodPost, "/v1/invoiceitems", s.createInvoiceItem},
		{http.MethodPost, "/v1/invoices", s.createInvoice},
		{http.MethodGet, "/v1/invoices/{id}", s.getInvoice},
		{http.MethodPost, "/v1/invoices/{id}/finalize", s.finalizeInvoice},
		{http.MethodPost, "/v1/invoices/{id}/pay", s.payInvoice},
	}
}

// match finds the endpoint for a request and the value of its {id} segment.
func (s *Server) match(method, path string) (func(*call) (any, *apiError), string) {
	segs := strings.Split(path, "/")
	for _, rt := range s.routes {
		if rt.method != method {
			continue
		}
		want := strings.Split(rt.pattern, "/")
		if len(want) != len(segs) {
			continue
		}
		id, ok := "", true
		for i, w := range want {
			switch {
			case w == "{id}" && segs[i] != "":
				id = segs[i]
			case w != segs[i]:
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok {
			return rt.handle, id
		}
	}
	return nil, ""
}

// newID returns a fresh Stripe-style ID such as "pi_3F7Q…" and the next
// sequence number, which orders objects created within the same second.
func (s *Server) newID(prefix string) (string, int64) {
	s.seq++
	return prefix + randomID(), s.seq
}

func randomID() string {
	return rand.Text()[:24]
}

func (s *Server) unix() int64 {
	return s.now().Unix()
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
