package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpServer is an in-process SMTP server (go-smtp) that records what it
// receives. Fields set before start change its behaviour.
type smtpServer struct {
	user, pass  string        // when set, MAIL requires AUTH PLAIN with these
	rcptErr     error         // returned from every RCPT TO
	tlsConfig   *tls.Config   // offers STARTTLS when set (or TLS from the start when implicitTLS)
	implicitTLS bool          // wrap the listener in TLS (smtps)
	stallData   chan struct{} // when set, DATA blocks until it is closed

	addr string

	mu   sync.Mutex
	msgs []receivedMail
}

type receivedMail struct {
	from     string
	to       []string
	data     []byte
	authUser string
}

func (s *smtpServer) start(t *testing.T) {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 5 * time.Second
	srv.WriteTimeout = 5 * time.Second
	// Failed handshakes in the TLS tests are expected; keep them out of the output.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	var l net.Listener
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.implicitTLS {
		l = tls.NewListener(l, s.tlsConfig)
	} else {
		srv.TLSConfig = s.tlsConfig
	}
	s.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	if s.stallData != nil {
		// Registered after Close, so it runs first and frees a blocked DATA.
		t.Cleanup(func() { close(s.stallData) })
	}
}

func (s *smtpServer) received() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.msgs...)
}

type smtpSession struct {
	srv      *smtpServer
	authUser string
	from     string
	to       []string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if ss.srv.user == "" || user != ss.srv.user || pass != ss.srv.pass {
			return smtp.ErrAuthFailed
		}
		ss.authUser = user
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.user != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.srv.rcptErr != nil {
		return ss.srv.rcptErr
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.srv.stallData != nil {
		<-ss.srv.stallData
	}
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	ss.srv.msgs = append(ss.srv.msgs, receivedMail{from: ss.from, to: ss.to, data: b, authUser: ss.authUser})
	return nil
}

func (ss *smtpSession) Reset() { ss.from, ss.to = "", nil }

func (ss *smtpSession) Logout() error { return nil }

// selfSignedTLS returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1.
func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "creditd test smtp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func newEmailSender(t *testing.T, smtpURL string) *EmailSender {
	t.Helper()
	s, err := NewEmailSender(smtpURL, "Creditd Alerts <alerts@billing.example.com>", EmailOptions{Timeout: 5 * time.Second, Hostname: "creditd.test"})
	if err != nil {
		t.Fatalf("NewEmailSender: %v", err)
	}
	return s
}

var testRendered = Rendered{
	Title: "acme: credits depleted",
	Text:  "The credit balance of acme is depleted (0.000 credits). Buy credits or turn on auto-recharge: https://app.example.com/orgs/acme/billing",
}

// checkMail parses a received message and checks its envelope, headers and body.
func checkMail(t *testing.T, m receivedMail, to, msgID string, r Rendered) {
	t.Helper()
	if m.from != "alerts@billing.example.com" {
		t.Errorf("MAIL FROM = %q, want alerts@billing.example.com", m.from)
	}
	if len(m.to) != 1 || m.to[0] != to {
		t.Errorf("RCPT TO = %v, want [%s]", m.to, to)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatalf("received data is not a mail message: %v\n%s", err, m.data)
	}
	var dec mime.WordDecoder
	header := func(k string) string {
		v, err := dec.DecodeHeader(msg.Header.Get(k))
		if err != nil {
			t.Fatalf("header %s: %v", k, err)
		}
		return v
	}
	if from, err := mail.ParseAddress(header("From")); err != nil || from.Address != "alerts@billing.example.com" || from.Name != "Creditd Alerts" {
		t.Errorf("From = %q (%v)", header("From"), err)
	}
	if got, err := mail.ParseAddress(header("To")); err != nil || got.Address != to {
		t.Errorf("To = %q, want %s", header("To"), to)
	}
	if got := header("Subject"); got != r.Title {
		t.Errorf("Subject = %q, want %q", got, r.Title)
	}
	if got, want := header("Message-Id"), "<"+msgID+"@billing.example.com>"; got != want {
		t.Errorf("Message-ID = %q, want %q", got, want)
	}
	if got := header("X-Creditd-Message-Id"); got != msgID {
		t.Errorf("X-Creditd-Message-Id = %q, want %q", got, msgID)
	}
	if got := header("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q, want auto-generated", got)
	}
	if ct := header("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(header("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(msg.Body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"); got != r.Text {
		t.Errorf("body = %q, want %q", got, r.Text)
	}
}

func TestEmailSender_Send(t *testing.T) {
	t.Parallel()
	srv := &smtpServer{}
	srv.start(t)
	s := newEmailSender(t, "smtp://"+srv.addr+"?starttls=none")
	if err := s.Send(context.Background(), "ops@acme.example", "msg_3f2a", testRendered); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	checkMail(t, got[0], "ops@acme.example", "msg_3f2a", testRendered)
	if got[0].authUser != "" {
		t.Errorf("client authenticated as %q without credentials in the URL", got[0].authUser)
	}
}

func TestEmailSender_Auth(t *testing.T) {
	t.Parallel()
	const pass = "p@ss w0rd-s3cret"
	tests := []struct {
		name          string
		userinfo      string // before "@" in the URL, escaped
		query         string
		wantErr       bool
		wantPermanent bool
	}{
		{name: "PlainDefault", userinfo: "alice:p%40ss%20w0rd-s3cret@", query: "?starttls=none"},
		{name: "PlainExplicit", userinfo: "alice:p%40ss%20w0rd-s3cret@", query: "?starttls=none&auth=plain"},
		{name: "WrongPassword", userinfo: "alice:p%40ss%20w0rd-s3cret-nope@", query: "?starttls=none", wantErr: true, wantPermanent: true}, // 535
		{name: "NoCredentials", query: "?starttls=none", wantErr: true, wantPermanent: true},                                               // 502 at MAIL
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := &smtpServer{user: "alice", pass: pass}
			srv.start(t)
			err := newEmailSender(t, "smtp://"+tt.userinfo+srv.addr+tt.query).Send(context.Background(), "ops@acme.example", "msg_auth", testRendered)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				got := srv.received()
				if len(got) != 1 || got[0].authUser != "alice" {
					t.Fatalf("received %+v, want one message authenticated as alice", got)
				}
				return
			}
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if IsPermanent(err) != tt.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v: %v", IsPermanent(err), tt.wantPermanent, err)
			}
			if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "p%40ss") || strings.Contains(msg, "smtp://") {
				t.Errorf("error leaks the password or URL: %v", msg)
			}
			if n := len(srv.received()); n != 0 {
				t.Errorf("server received %d messages, want 0", n)
			}
		})
	}
}

func TestEmailSender_ReplyCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		rcptErr       error
		wantStatus    int
		wantPermanent bool
	}{
		{"Rejected550", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, 550, true},
		{"Greylisted451", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "try again later"}, 451, false},
		{"Full452", &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}, 452, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := &smtpServer{rcptErr: tt.rcptErr}
			srv.start(t)
			err := newEmailSender(t, "smtp://"+srv.addr+"?starttls=none").Send(context.Background(), "nobody@acme.example", "msg_rcpt", testRendered)
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v (%T), want *DeliveryError", err, err)
			}
			if de.Status != tt.wantStatus || de.Permanent != tt.wantPermanent {
				t.Errorf("Status, Permanent = %d, %v; want %d, %v (%v)", de.Status, de.Permanent, tt.wantStatus, tt.wantPermanent, err)
			}
			if n := len(srv.received()); n != 0 {
				t.Errorf("server received %d messages, want 0", n)
			}
		})
	}
}

func TestEmailSender_TLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		tls         bool // server has a certificate
		implicitTLS bool
		query       string
		scheme      string
		wantErr     string // "" = delivered
	}{
		{name: "StartTLSRequired", tls: true, scheme: "smtp", query: "?starttls=required&insecure_skip_verify=true"},
		{name: "StartTLSOpportunisticUsesTLS", tls: true, scheme: "smtp", query: "?insecure_skip_verify=true"},
		{name: "StartTLSOpportunisticWithoutTLS", scheme: "smtp", query: ""},
		{name: "StartTLSRequiredWithoutTLS", scheme: "smtp", query: "?starttls=required", wantErr: "STARTTLS"},
		{name: "StartTLSUnverifiedCert", tls: true, scheme: "smtp", query: "?starttls=required", wantErr: "certificate"},
		{name: "ImplicitTLS", tls: true, implicitTLS: true, scheme: "smtps", query: "?insecure_skip_verify=true"},
		{name: "ImplicitTLSUnverifiedCert", tls: true, implicitTLS: true, scheme: "smtps", wantErr: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := &smtpServer{implicitTLS: tt.implicitTLS, user: "alice", pass: "secret-pass"}
			if tt.tls {
				srv.tlsConfig = selfSignedTLS(t)
			}
			srv.start(t)
			err := newEmailSender(t, tt.scheme+"://alice:secret-pass@"+srv.addr+tt.query).Send(context.Background(), "ops@acme.example", "msg_tls", testRendered)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				got := srv.received()
				if len(got) != 1 {
					t.Fatalf("server received %d messages, want 1", len(got))
				}
				checkMail(t, got[0], "ops@acme.example", "msg_tls", testRendered)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Send = %v, want error containing %q", err, tt.wantErr)
			}
			if IsPermanent(err) {
				t.Errorf("TLS failure is permanent, want transient: %v", err)
			}
			if strings.Contains(err.Error(), "secret-pass") {
				t.Errorf("error leaks the password: %v", err)
			}
			if n := len(srv.received()); n != 0 {
				t.Errorf("server received %d messages, want 0", n)
			}
		})
	}
}

func TestEmailSender_ContextCancelsSession(t *testing.T) {
	t.Parallel()
	srv := &smtpServer{stallData: make(chan struct{})}
	srv.start(t)
	s := newEmailSender(t, "smtp://"+srv.addr+"?starttls=none") // 5s timeout
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, "ops@acme.example", "msg_stall", testRendered)
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Fatalf("Send = %v, want a transient error wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %s; the context should end the session", d)
	}
}

func TestEmailSender_ConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	err = newEmailSender(t, "smtp://u:topsecret@"+addr).Send(context.Background(), "ops@acme.example", "msg_1", testRendered)
	var de *DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Status != 0 {
		t.Fatalf("Send = %#v, want a transient *DeliveryError without status", err)
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestEmailSender_PermanentInputErrors(t *testing.T) {
	t.Parallel()
	srv := &smtpServer{}
	srv.start(t)
	s := newEmailSender(t, "smtp://"+srv.addr+"?starttls=none")
	tests := []struct {
		name, to, msgID, wantErr string
	}{
		{"BadRecipient", "not an address", "msg_1", "email: to:"},
		{"EmptyMessageID", "ops@acme.example", "", "message id is empty"},
		{"MessageIDWithAt", "ops@acme.example", "msg@evil", "message id has character '@'"},
		{"MessageIDWithNewline", "ops@acme.example", "msg\r\nBcc: x@evil.example", "message id has character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := s.Send(context.Background(), tt.to, tt.msgID, testRendered)
			if !IsPermanent(err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Send = %v, want permanent error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Cleanup(func() {
		if n := len(srv.received()); n != 0 {
			t.Errorf("server received %d messages, want 0", n)
		}
	})
}

func TestNewEmailSender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		url         string
		from        string
		wantErr     string // "" = valid
		wantHost    string
		wantPort    int
		wantImplTLS bool
	}{
		{name: "SMTPDefaults", url: "smtp://mail.example.com", wantHost: "mail.example.com", wantPort: 587},
		{name: "SMTPSDefaults", url: "smtps://mail.example.com", wantHost: "mail.example.com", wantPort: 465, wantImplTLS: true},
		{name: "Port", url: "smtp://user:pw@mail.example.com:2525?starttls=required&auth=login", wantHost: "mail.example.com", wantPort: 2525},
		{name: "IPv6", url: "smtp://[::1]:25?starttls=none", wantHost: "::1", wantPort: 25},
		{name: "TrailingSlash", url: "smtp://mail.example.com/", wantHost: "mail.example.com", wantPort: 587},
		{name: "UnknownScheme", url: "http://mail.example.com", wantErr: "smtp url: scheme must be smtp or smtps"},
		{name: "NoScheme", url: "mail.example.com:25", wantErr: "smtp url: scheme must be smtp or smtps"},
		{name: "UnknownQueryKey", url: "smtp://mail.example.com?tls=yes", wantErr: `smtp url: unknown query parameter "tls"`},
		{name: "RepeatedQueryKey", url: "smtp://mail.example.com?auth=none&auth=plain", wantErr: "given more than once"},
		{name: "BadStartTLS", url: "smtp://mail.example.com?starttls=maybe", wantErr: "starttls must be required, opportunistic or none"},
		{name: "StartTLSOnSMTPS", url: "smtps://mail.example.com?starttls=required", wantErr: "starttls applies to smtp://"},
		{name: "BadSkipVerify", url: "smtp://mail.example.com?insecure_skip_verify=yes", wantErr: "insecure_skip_verify must be true or false"},
		{name: "BadAuth", url: "smtp://u:p@mail.example.com?auth=cram-md5", wantErr: "auth must be plain, login or none"},
		{name: "AuthWithoutUser", url: "smtp://mail.example.com?auth=plain", wantErr: "auth=plain needs a user"},
		{name: "AuthNoneWithCredentials", url: "smtp://u:p@mail.example.com?auth=none", wantErr: "auth=none but the URL has credentials"},
		{name: "NoHost", url: "smtp://:25", wantErr: "host is missing"},
		{name: "Opaque", url: "smtp:mail.example.com", wantErr: "host is missing"},
		{name: "Path", url: "smtp://mail.example.com/inbox", wantErr: "must not have a path"},
		{name: "Fragment", url: "smtp://mail.example.com#x", wantErr: "must not have a fragment"},
		{name: "BadPort", url: "smtp://mail.example.com:0", wantErr: "port must be 1 to 65535"},
		{name: "NotAURLHidesPassword", url: "smtp://user:hunter2@mail example.com", wantErr: "smtp url: not a valid URL"},
		{name: "BadFrom", url: "smtp://mail.example.com", from: "not an address", wantErr: "from:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			from := tt.from
			if from == "" {
				from = "alerts@example.com"
			}
			s, err := NewEmailSender(tt.url, from, EmailOptions{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewEmailSender = %v, want error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "mail.example.com") {
					t.Errorf("error quotes the URL: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewEmailSender: %v", err)
			}
			if s.cfg.host != tt.wantHost || s.cfg.port != tt.wantPort || s.cfg.implicitTLS != tt.wantImplTLS {
				t.Errorf("host, port, implicit TLS = %q, %d, %v; want %q, %d, %v",
					s.cfg.host, s.cfg.port, s.cfg.implicitTLS, tt.wantHost, tt.wantPort, tt.wantImplTLS)
			}
			if s.timeout != defaultTimeout || s.helo != "localhost" || s.domain != "example.com" {
				t.Errorf("defaults: timeout %s, helo %q, domain %q", s.timeout, s.helo, s.domain)
			}
		})
	}
}
