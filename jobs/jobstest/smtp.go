package jobstest

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message an SMTPServer received.
type Mail struct {
	From string
	To   []string
	Msg  *mail.Message
	Body string // decoded from its transfer encoding
}

// SMTPServer is a real SMTP server on a loopback port that keeps what it
// receives, for tests of email delivery.
type SMTPServer struct {
	Addr string // host:port

	mu   sync.Mutex
	mail []Mail
	srv  *smtp.Server
}

// NewSMTPServer starts a server that accepts every message; it stops when
// the test ends.
func NewSMTPServer(t testing.TB) *SMTPServer {
	t.Helper()
	s := &SMTPServer{}
	srv := smtp.NewServer(smtpBackend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr, s.srv = ln.Addr().String(), srv
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Mail returns the messages received so far.
func (s *SMTPServer) Mail() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

type smtpBackend struct{ s *SMTPServer }

func (b smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: b.s}, nil }

type smtpSession struct {
	s    *SMTPServer
	from string
	to   []string
}

func (x *smtpSession) Reset()        { x.from, x.to = "", nil }
func (x *smtpSession) Logout() error { return nil }

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	var bodyReader io.Reader = msg.Body
	switch strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		bodyReader = quotedprintable.NewReader(msg.Body)
	case "base64":
		bodyReader = base64.NewDecoder(base64.StdEncoding, msg.Body)
	}
	body, err := io.ReadAll(bodyReader)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.mail = append(x.s.mail, Mail{From: x.from, To: append([]string(nil), x.to...), Msg: msg, Body: string(body)})
	x.s.mu.Unlock()
	return nil
}
