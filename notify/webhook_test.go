package notify

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Standard Webhooks published test vector.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSign_StandardWebhooksVector(t *testing.T) {
	t.Parallel()
	got, err := Sign(vectorSecret, vectorID, time.Unix(vectorTS, 0), []byte(vectorBody))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if got != vectorSig {
		t.Fatalf("Sign = %q, want %q", got, vectorSig)
	}
}

func vectorHeader() http.Header {
	h := http.Header{}
	h.Set(HeaderWebhookID, vectorID)
	h.Set(HeaderWebhookTimestamp, strconv.Itoa(vectorTS))
	h.Set(HeaderWebhookSignature, vectorSig)
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(vectorTS, 0).Add(30 * time.Second)
	otherSecret := "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 24 zero bytes
	tests := []struct {
		name      string
		secret    string
		header    func(http.Header)
		body      string
		now       time.Time
		tolerance time.Duration
		wantErr   error // nil = valid
	}{
		{name: "Good"},
		{name: "TamperedBody", body: `{"test": 2432232315}`, wantErr: ErrInvalidSignature},
		{name: "WrongSecret", secret: otherSecret, wantErr: ErrInvalidSignature},
		{name: "StaleTimestamp", now: time.Unix(vectorTS, 0).Add(6 * time.Minute), wantErr: ErrStaleTimestamp},
		{name: "FutureTimestamp", now: time.Unix(vectorTS, 0).Add(-6 * time.Minute), wantErr: ErrStaleTimestamp},
		{name: "WithinCustomTolerance", now: time.Unix(vectorTS, 0).Add(time.Hour), tolerance: 2 * time.Hour},
		{name: "OutsideCustomTolerance", now: time.Unix(vectorTS, 0).Add(time.Minute), tolerance: 10 * time.Second, wantErr: ErrStaleTimestamp},
		{name: "TimestampNotNumber", header: func(h http.Header) { h.Set(HeaderWebhookTimestamp, "yesterday") }, wantErr: ErrStaleTimestamp},
		{name: "TamperedTimestamp", header: func(h http.Header) { h.Set(HeaderWebhookTimestamp, strconv.Itoa(vectorTS+1)) }, wantErr: ErrInvalidSignature},
		{name: "TamperedID", header: func(h http.Header) { h.Set(HeaderWebhookID, "msg_other") }, wantErr: ErrInvalidSignature},
		{name: "MissingID", header: func(h http.Header) { h.Del(HeaderWebhookID) }, wantErr: ErrMissingHeader},
		{name: "MissingTimestamp", header: func(h http.Header) { h.Del(HeaderWebhookTimestamp) }, wantErr: ErrMissingHeader},
		{name: "MissingSignature", header: func(h http.Header) { h.Del(HeaderWebhookSignature) }, wantErr: ErrMissingHeader},
		{
			name:   "MultipleSignaturesOneMatches",
			header: func(h http.Header) { h.Set(HeaderWebhookSignature, "v1,Zm9v v1a,xyz "+vectorSig+" v2,bm90") },
		},
		{
			name:    "MultipleSignaturesNoneMatches",
			header:  func(h http.Header) { h.Set(HeaderWebhookSignature, "v1,Zm9v v1,!!notbase64 v2,"+vectorSig[3:]) },
			wantErr: ErrInvalidSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret, body, at := vectorSecret, vectorBody, now
			if tt.secret != "" {
				secret = tt.secret
			}
			if tt.body != "" {
				body = tt.body
			}
			if !tt.now.IsZero() {
				at = tt.now
			}
			h := vectorHeader()
			if tt.header != nil {
				tt.header(h)
			}
			err := Verify(secret, h, []byte(body), at, tt.tolerance)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerify_BadSecret(t *testing.T) {
	t.Parallel()
	if err := Verify("short", vectorHeader(), []byte(vectorBody), time.Unix(vectorTS, 0), 0); err == nil {
		t.Fatal("Verify with an invalid secret succeeded")
	}
}

func TestValidateSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secret  string
		wantErr string // "" = valid
	}{
		{"StandardVector", vectorSecret, ""},
		{"WhsecTooLong", "whsec_" + strings.Repeat("A", 88) /* 66 bytes */, "decodes to 66 bytes, want 24 to 64"},
		{"WhsecExactly64Bytes", "whsec_" + strings.Repeat("AAAA", 21) + "AA==", ""},
		{"WhsecTooShort", "whsec_AAAAAAAAAAAAAAAAAAAAAAAA" /* 18 bytes */, "decodes to 18 bytes, want 24 to 64"},
		{"WhsecNotBase64", "whsec_not*base64!", "not valid standard base64"},
		{"WhsecURLBase64Refused", "whsec_" + strings.Repeat("_", 32), "not valid standard base64"},
		{"WhsecEmpty", "whsec_", "decodes to 0 bytes"},
		{"Raw16", strings.Repeat("k", 16), ""},
		{"Raw256", strings.Repeat("k", 256), ""},
		{"RawTooShort", "hunter2hunter2", "14 bytes, want a whsec_ base64 key or 16 to 256 raw bytes"},
		{"RawTooLong", strings.Repeat("k", 257), "257 bytes"},
		{"Empty", "", "0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateSecret(tt.secret)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateSecret = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateSecret = %v, want error containing %q", err, tt.wantErr)
			}
			if len(tt.secret) > 8 && strings.Contains(err.Error(), tt.secret[len(tt.secret)-8:]) {
				t.Fatalf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestSign_RawSecretIsKey(t *testing.T) {
	t.Parallel()
	raw := strings.Repeat("k", 24)
	// The same 24 bytes in whsec_ form must give the same signature.
	b64 := "whsec_a2tra2tra2tra2tra2tra2tra2tra2tr"
	ts := time.Unix(vectorTS, 0)
	s1, err := Sign(raw, vectorID, ts, []byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Sign(b64, vectorID, ts, []byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 {
		t.Fatalf("raw secret signature %q != whsec_ signature %q", s1, s2)
	}
}

func TestValidateWebhookURL(t *testing.T) {
	t.Parallel()
	strict := WebhookOptions{RequireHTTPS: true}
	open := WebhookOptions{AllowPrivate: true}
	tests := []struct {
		name    string
		url     string
		o       WebhookOptions
		wantErr string // "" = valid
	}{
		{"HTTPS", "https://hooks.example.com/creditd?x=1", strict, ""},
		{"HTTPWhenAllowed", "http://hooks.example.com/creditd", WebhookOptions{}, ""},
		{"HTTPRefused", "http://hooks.example.com/creditd", strict, "url: must use https (CREDITD_WEBHOOK_REQUIRE_HTTPS is on)"},
		{"UppercaseScheme", "HTTPS://hooks.example.com/", strict, ""},
		{"PublicIP", "https://93.184.216.34/hook", WebhookOptions{}, ""},
		{"PublicIPv6", "https://[2606:2800:220:1:248:1893:25c8:1946]/hook", WebhookOptions{}, ""},
		{"Port", "https://hooks.example.com:8443/hook", WebhookOptions{}, ""},
		{"Relative", "/hook", WebhookOptions{}, "url: scheme must be http or https"},
		{"FTP", "ftp://hooks.example.com/", WebhookOptions{}, "url: scheme must be http or https"},
		{"NoHost", "https:///hook", WebhookOptions{}, "url: host is missing"},
		{"Opaque", "https:hooks.example.com", WebhookOptions{}, "url: host is missing"},
		{"Userinfo", "https://user:pw@hooks.example.com/", WebhookOptions{}, "url: must not contain a user or password"},
		{"Fragment", "https://hooks.example.com/#x", WebhookOptions{}, "url: must not contain a fragment"},
		{"EmptyFragment", "https://hooks.example.com/#", WebhookOptions{}, "url: must not contain a fragment"},
		{"TooLong", "https://hooks.example.com/" + strings.Repeat("a", 2048), WebhookOptions{}, "at most 2048 allowed"},
		{"NotAURL", "https://hooks.example.com/%zz", WebhookOptions{}, "url: not a valid URL"},
		{"Localhost", "http://localhost:8080/", WebhookOptions{}, "localhost is not allowed"},
		{"LocalhostUpperDot", "http://LOCALHOST./", WebhookOptions{}, "localhost is not allowed"},
		{"SubLocalhost", "http://api.localhost/", WebhookOptions{}, "localhost is not allowed"},
		{"Loopback", "http://127.0.0.1:9000/", WebhookOptions{}, "127.0.0.1 is a loopback"},
		{"LoopbackV6", "http://[::1]/", WebhookOptions{}, "::1 is a loopback"},
		{"MappedLoopback", "http://[::ffff:127.0.0.1]/", WebhookOptions{}, "loopback, private"},
		{"Private10", "https://10.1.2.3/", WebhookOptions{}, "loopback, private"},
		{"Private192", "https://192.168.1.1/", WebhookOptions{}, "loopback, private"},
		{"Private172", "https://172.16.0.1/", WebhookOptions{}, "loopback, private"},
		{"ULA", "https://[fd00::1]/", WebhookOptions{}, "loopback, private"},
		{"LinkLocalMetadata", "http://169.254.169.254/latest/meta-data", WebhookOptions{}, "loopback, private"},
		{"LinkLocalV6", "http://[fe80::1%25eth0]/", WebhookOptions{}, "loopback, private"},
		{"Unspecified", "http://0.0.0.0/", WebhookOptions{}, "loopback, private"},
		{"ThisNetwork", "http://0.1.2.3/", WebhookOptions{}, "loopback, private"},
		{"CGNAT", "http://100.64.0.1/", WebhookOptions{}, "loopback, private"},
		{"Multicast", "http://224.0.0.1/", WebhookOptions{}, "loopback, private"},
		{"Broadcast", "http://255.255.255.255/", WebhookOptions{}, "loopback, private"},
		{"LoopbackAllowed", "http://127.0.0.1:9000/", open, ""},
		{"LocalhostAllowed", "http://localhost:9000/", open, ""},
		{"AllowedStillNeedsHTTPS", "http://127.0.0.1/", WebhookOptions{AllowPrivate: true, RequireHTTPS: true}, "must use https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateWebhookURL(tt.url, tt.o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateWebhookURL(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateWebhookURL(%q) = %v, want error containing %q", tt.url, err, tt.wantErr)
			}
		})
	}
}

// receiver is an in-process webhook endpoint. The path picks the answer:
// /status/<code> answers <code> (with Retry-After from ?retry_after=, and
// Location /ok for 3xx), /slow blocks until the client gives up, anything
// else answers 200.
type receiver struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []receivedRequest
}

type receivedRequest struct {
	path   string
	header http.Header
	body   []byte
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, receivedRequest{path: r.URL.Path, header: r.Header.Clone(), body: body})
	rc.mu.Unlock()

	if r.URL.Path == "/slow" {
		<-r.Context().Done()
		return
	}
	code := http.StatusOK
	if s, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
		code, _ = strconv.Atoi(s)
	}
	if ra := r.URL.Query().Get("retry_after"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	if code >= 300 && code < 400 {
		w.Header().Set("Location", "/ok")
	}
	w.WriteHeader(code)
	if r.URL.Path == "/big" {
		_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
	}
}

func (rc *receiver) requests(path string) []receivedRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []receivedRequest
	for _, r := range rc.reqs {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

var fixedNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func testSender(o WebhookOptions) *WebhookSender {
	if o.Now == nil {
		o.Now = func() time.Time { return fixedNow }
	}
	return NewWebhookSender(o)
}

func TestWebhookSender_SendSignsRequest(t *testing.T) {
	t.Parallel()
	rc := startReceiver(t)
	s := testSender(WebhookOptions{AllowPrivate: true})
	body := []byte(`{"type":"alert.depleted"}`)
	if err := s.Send(context.Background(), rc.srv.URL+"/hook", vectorSecret, "msg_abc", body); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := rc.requests("/hook")
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	for k, want := range map[string]string{
		"Content-Type":         "application/json",
		"User-Agent":           "creditd-webhook/1",
		HeaderWebhookID:        "msg_abc",
		HeaderWebhookTimestamp: strconv.FormatInt(fixedNow.Unix(), 10),
	} {
		if v := got.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if string(got.body) != string(body) {
		t.Errorf("body = %q, want %q", got.body, body)
	}
	if err := Verify(vectorSecret, got.header, got.body, fixedNow.Add(time.Second), time.Minute); err != nil {
		t.Errorf("receiver cannot verify the request: %v", err)
	}
}

func TestWebhookSender_Status(t *testing.T) {
	t.Parallel()
	rc := startReceiver(t)
	s := testSender(WebhookOptions{AllowPrivate: true})
	const secret = "a-raw-secret-of-some-length"
	tests := []struct {
		path           string
		wantOK         bool
		wantPermanent  bool
		wantRetryAfter time.Duration
	}{
		{path: "/status/200", wantOK: true},
		{path: "/status/204", wantOK: true},
		{path: "/big", wantOK: true},
		{path: "/status/301", wantPermanent: true},
		{path: "/status/307", wantPermanent: true},
		{path: "/status/400", wantPermanent: true},
		{path: "/status/404", wantPermanent: true},
		{path: "/status/408"},
		{path: "/status/410", wantPermanent: true},
		{path: "/status/429?retry_after=30", wantRetryAfter: 30 * time.Second},
		{path: "/status/429?retry_after=86400", wantRetryAfter: time.Hour},
		{path: "/status/429?retry_after=Wed,%2021%20Oct%202015%2007:28:00%20GMT"},
		{path: "/status/429"},
		{path: "/status/500"},
		{path: "/status/503?retry_after=5", wantRetryAfter: 5 * time.Second},
		{path: "/status/500?retry_after=5"}, // Retry-After only counts on 429 and 503
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			t.Parallel()
			err := s.Send(context.Background(), rc.srv.URL+tt.path, secret, "msg_status", []byte(`{}`))
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Send = %v, want nil", err)
				}
				return
			}
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v (%T), want *DeliveryError", err, err)
			}
			wantStatus, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(tt.path, "/status/"), "?", 2)[0])
			if de.Status != wantStatus {
				t.Errorf("Status = %d, want %d", de.Status, wantStatus)
			}
			if IsPermanent(err) != tt.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v (%v)", IsPermanent(err), tt.wantPermanent, err)
			}
			if de.RetryAfter != tt.wantRetryAfter {
				t.Errorf("RetryAfter = %s, want %s", de.RetryAfter, tt.wantRetryAfter)
			}
			if msg := err.Error(); !strings.Contains(msg, "status "+strconv.Itoa(wantStatus)) || strings.Contains(msg, secret) {
				t.Errorf("error %q should name the status and never the secret", msg)
			}
		})
	}
	t.Cleanup(func() {
		if n := len(rc.requests("/ok")); n != 0 {
			t.Errorf("redirect was followed %d times", n)
		}
	})
}

func TestWebhookSender_Timeout(t *testing.T) {
	t.Parallel()
	rc := startReceiver(t)
	s := testSender(WebhookOptions{AllowPrivate: true, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := s.Send(context.Background(), rc.srv.URL+"/slow", vectorSecret, "msg_slow", []byte(`{}`))
	if err == nil {
		t.Fatal("Send to a stalled receiver succeeded")
	}
	if IsPermanent(err) {
		t.Errorf("timeout is permanent, want transient: %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %s, want about the 200ms timeout", d)
	}
}

func TestWebhookSender_ContextCancelled(t *testing.T) {
	t.Parallel()
	rc := startReceiver(t)
	s := testSender(WebhookOptions{AllowPrivate: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Send(ctx, rc.srv.URL+"/hook", vectorSecret, "msg_ctx", []byte(`{}`))
	if !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Fatalf("Send = %v, want a transient error wrapping context.Canceled", err)
	}
}

func TestWebhookSender_RefusesPrivateAtDialTime(t *testing.T) {
	t.Parallel()
	rc := startReceiver(t)
	_, port, err := net.SplitHostPort(rc.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := testSender(WebhookOptions{}) // AllowPrivate false
	tests := []struct {
		name string
		url  string
	}{
		{"LiteralLoopback", rc.srv.URL + "/hook"},
		// Send skips ValidateWebhookURL's host checks, so this reaches the
		// dialer with a name that resolves to loopback, as a rebinding DNS
		// name would.
		{"NameResolvingToLoopback", "http://localhost:" + port + "/hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := s.Send(context.Background(), tt.url, vectorSecret, "msg_private", []byte(`{}`))
			if !IsPermanent(err) || !errors.Is(err, errPrivateAddress) {
				t.Fatalf("Send = %v, want a permanent private-address error", err)
			}
		})
	}
	t.Cleanup(func() {
		if n := len(rc.requests("/hook")); n != 0 {
			t.Errorf("receiver got %d requests despite the guard", n)
		}
	})
}

func TestWebhookSender_PermanentInputErrors(t *testing.T) {
	t.Parallel()
	rc := startReceiver(t)
	tests := []struct {
		name    string
		o       WebhookOptions
		url     string
		secret  string
		msgID   string
		wantErr string
	}{
		{"BadSecret", WebhookOptions{AllowPrivate: true}, rc.srv.URL, "short", "msg_1", "secret:"},
		{"BadURL", WebhookOptions{AllowPrivate: true}, "ftp://example.com/", vectorSecret, "msg_1", "scheme must be http or https"},
		{"HTTPWhenHTTPSRequired", WebhookOptions{AllowPrivate: true, RequireHTTPS: true}, rc.srv.URL, vectorSecret, "msg_1", "must use https"},
		{"EmptyMessageID", WebhookOptions{AllowPrivate: true}, rc.srv.URL, vectorSecret, "", "message id is empty"},
		{"HeaderInjectionMessageID", WebhookOptions{AllowPrivate: true}, rc.srv.URL, vectorSecret, "msg\r\nX-Evil: 1", "message id has character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := testSender(tt.o).Send(context.Background(), tt.url, tt.secret, tt.msgID, []byte(`{}`))
			if !IsPermanent(err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Send = %v, want permanent error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Cleanup(func() {
		if n := len(rc.requests("/")); n != 0 {
			t.Errorf("receiver got %d requests for invalid input", n)
		}
	})
}

func TestWebhookSender_NetworkErrorHidesURL(t *testing.T) {
	t.Parallel()
	// Grab a free port and close it so the connection is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := testSender(WebhookOptions{AllowPrivate: true})
	err = s.Send(context.Background(), "http://"+addr+"/hook?token=sekrit", vectorSecret, "msg_1", []byte(`{}`))
	if err == nil || IsPermanent(err) {
		t.Fatalf("Send = %v, want a transient network error", err)
	}
	if strings.Contains(err.Error(), "sekrit") {
		t.Errorf("error quotes the URL: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"3600", time.Hour},
		{"3601", time.Hour},
		{"99999999999999999999", 0},
		{"1.5", 0},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := retryAfter(tt.in); got != tt.want {
				t.Errorf("retryAfter(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"Nil", nil, false},
		{"Plain", errors.New("boom"), false},
		{"Transient", &DeliveryError{Status: 503}, false},
		{"Permanent", &DeliveryError{Status: 404, Permanent: true}, true},
		{"WrappedPermanent", errors.Join(errors.New("ctx"), &DeliveryError{Permanent: true}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestDeliveryError_Error(t *testing.T) {
	t.Parallel()
	cause := errors.New("dial tcp: refused")
	tests := []struct {
		name string
		err  *DeliveryError
		want string
	}{
		{"Status", &DeliveryError{Status: 404, Permanent: true}, "notify: permanent delivery failure: status 404"},
		{"RetryAfter", &DeliveryError{Status: 429, RetryAfter: 30 * time.Second}, "notify: transient delivery failure: status 429, retry after 30s"},
		{"Cause", &DeliveryError{Err: cause}, "notify: transient delivery failure: dial tcp: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	if !errors.Is(&DeliveryError{Err: cause}, cause) {
		t.Error("DeliveryError does not unwrap to its cause")
	}
}

func TestRefusePrivate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		address string
		refused bool
	}{
		{"93.184.216.34:443", false},
		{"[2606:2800:220:1:248:1893:25c8:1946]:443", false},
		{"127.0.0.1:80", true},
		{"[::1]:80", true},
		{"[::ffff:10.0.0.1]:80", true},
		{"169.254.169.254:80", true},
		{"[fe80::1%eth0]:80", true},
		{"0.0.0.0:80", true},
		{"not-an-address", true}, // fail closed
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			t.Parallel()
			err := refusePrivate("tcp", tt.address, nil)
			if refused := errors.Is(err, errPrivateAddress); refused != tt.refused {
				t.Fatalf("refusePrivate(%q) = %v, want refused %v", tt.address, err, tt.refused)
			}
		})
	}
}

func TestNewWebhookSender_Defaults(t *testing.T) {
	t.Parallel()
	s := NewWebhookSender(WebhookOptions{})
	if s.opts.Timeout != 10*time.Second || s.client.Timeout != 10*time.Second {
		t.Errorf("timeout = %s / %s, want 10s", s.opts.Timeout, s.client.Timeout)
	}
	if s.opts.Now == nil {
		t.Error("Now is nil, want time.Now")
	}
}
