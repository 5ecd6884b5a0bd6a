package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// headerMessageID carries the bare message id, so receivers and support can
// match a mail to the outbox without parsing Message-ID.
const headerMessageID = "X-Creditd-Message-Id"

// Default SMTP ports: submission with STARTTLS, and submissions (implicit TLS).
const (
	defaultSubmissionPort  = 587
	defaultSubmissionsPort = 465
)

// EmailOptions configures an EmailSender.
type EmailOptions struct {
	Timeout  time.Duration // per message, from dial to QUIT; default 10s
	Hostname string        // HELO/EHLO name; default "localhost"
}

// EmailSender sends alert emails through one SMTP server. It opens a
// connection per message: alerts are rare, and a fresh session keeps one
// failed message from poisoning the next. It is safe for concurrent use.
type EmailSender struct {
	cfg     smtpConfig
	from    string
	domain  string
	timeout time.Duration
	helo    string
}

// smtpConfig is a parsed SMTP_URL.
type smtpConfig struct {
	host        string
	port        int
	implicitTLS bool
	starttls    gomail.TLSPolicy
	auth        gomail.SMTPAuthType
	user, pass  string
	tls         *tls.Config
}

// NewEmailSender parses smtpURL and from and returns a sender. smtpURL is
// smtp://[user:pass@]host[:port] (port 587, opportunistic STARTTLS) or
// smtps://[user:pass@]host[:port] (implicit TLS, port 465), with query options
// starttls=required|opportunistic|none (smtp only), insecure_skip_verify=true
// and auth=plain|login|none (default plain when a user is given, else none).
// Errors never quote the URL, which may hold a password.
func NewEmailSender(smtpURL, from string, o EmailOptions) (*EmailSender, error) {
	cfg, err := parseSMTPURL(smtpURL)
	if err != nil {
		return nil, err
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	// ParseAddress guarantees local@domain with a non-empty domain.
	domain := addr.Address[strings.LastIndexByte(addr.Address, '@')+1:]
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	return &EmailSender{
		cfg:     cfg,
		from:    from,
		domain:  domain,
		timeout: o.Timeout,
		helo:    o.Hostname,
	}, nil
}

func parseSMTPURL(raw string) (smtpConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included; say less.
		return smtpConfig{}, errors.New("smtp url: not a valid URL")
	}
	var cfg smtpConfig
	switch u.Scheme {
	case "smtp":
		cfg.port, cfg.starttls = defaultSubmissionPort, gomail.TLSOpportunistic
	case "smtps":
		cfg.port, cfg.implicitTLS, cfg.starttls = defaultSubmissionsPort, true, gomail.NoTLS
	default:
		return smtpConfig{}, errors.New("smtp url: scheme must be smtp or smtps")
	}
	switch {
	case u.Opaque != "" || u.Hostname() == "":
		return smtpConfig{}, errors.New("smtp url: host is missing")
	case u.Path != "" && u.Path != "/":
		return smtpConfig{}, errors.New("smtp url: must not have a path")
	case u.Fragment != "":
		return smtpConfig{}, errors.New("smtp url: must not have a fragment")
	}
	cfg.host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return smtpConfig{}, errors.New("smtp url: port must be 1 to 65535")
		}
		cfg.port = n
	}
	if u.User != nil {
		cfg.user = u.User.Username()
		cfg.pass, _ = u.User.Password()
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return smtpConfig{}, errors.New("smtp url: query is not valid")
	}
	skipVerify := false
	authSet := false
	for k, vs := range q {
		if len(vs) != 1 {
			return smtpConfig{}, fmt.Errorf("smtp url: query parameter %q given more than once", k)
		}
		v := vs[0]
		switch k {
		case "starttls":
			if cfg.implicitTLS {
				return smtpConfig{}, errors.New("smtp url: starttls applies to smtp://, not smtps:// (TLS from the start)")
			}
			switch v {
			case "required":
				cfg.starttls = gomail.TLSMandatory
			case "opportunistic":
				cfg.starttls = gomail.TLSOpportunistic
			case "none":
				cfg.starttls = gomail.NoTLS
			default:
				return smtpConfig{}, errors.New("smtp url: starttls must be required, opportunistic or none")
			}
		case "insecure_skip_verify":
			switch v {
			case "true":
				skipVerify = true
			case "false":
			default:
				return smtpConfig{}, errors.New("smtp url: insecure_skip_verify must be true or false")
			}
		case "auth":
			authSet = true
			switch v {
			case "plain":
				cfg.auth = gomail.SMTPAuthPlain
			case "login":
				cfg.auth = gomail.SMTPAuthLogin
			case "none":
				cfg.auth = gomail.SMTPAuthNoAuth
			default:
				return smtpConfig{}, errors.New("smtp url: auth must be plain, login or none")
			}
		default:
			return smtpConfig{}, fmt.Errorf("smtp url: unknown query parameter %q (known: starttls, insecure_skip_verify, auth)", k)
		}
	}
	switch {
	case !authSet && cfg.user != "":
		cfg.auth = gomail.SMTPAuthPlain
	case !authSet:
		cfg.auth = gomail.SMTPAuthNoAuth
	case cfg.auth == gomail.SMTPAuthNoAuth && u.User != nil:
		return smtpConfig{}, errors.New("smtp url: auth=none but the URL has credentials")
	case cfg.auth != gomail.SMTPAuthNoAuth && cfg.user == "":
		return smtpConfig{}, fmt.Errorf("smtp url: auth=%s needs a user in the URL", strings.ToLower(string(cfg.auth)))
	}
	// InsecureSkipVerify only ever comes from an explicit insecure_skip_verify=true.
	cfg.tls = &tls.Config{ServerName: cfg.host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
	return cfg, nil
}

// Send delivers one plain-text email to the address to: Subject r.Title,
// body r.Text, Message-ID <msgID@from-domain> and an X-Creditd-Message-Id
// header, so a repeat after a crash is recognisable. SMTP 5xx replies yield a
// permanent *DeliveryError with the reply code as Status; anything else
// (4xx, network, TLS, timeouts, a cancelled ctx) is transient, as is usual
// for mail. A bad message id or recipient is permanent.
func (s *EmailSender) Send(ctx context.Context, to, msgID string, r Rendered) error {
	if err := checkMessageID(msgID); err != nil {
		return permanent(fmt.Errorf("email: %w", err))
	}
	m := gomail.NewMsg()
	if err := m.From(s.from); err != nil {
		return permanent(fmt.Errorf("email: from: %w", err))
	}
	if err := m.To(to); err != nil {
		return permanent(fmt.Errorf("email: to: %w", err))
	}
	m.Subject(r.Title)
	m.SetBodyString(gomail.TypeTextPlain, r.Text)
	m.SetMessageIDWithValue(msgID + "@" + s.domain)
	m.SetGenHeader(headerMessageID, msgID)
	// RFC 3834: tells auto-responders (vacation replies) not to answer.
	m.SetGenHeader("Auto-Submitted", "auto-generated")

	c, err := gomail.NewClient(s.cfg.host, s.clientOptions(ctx)...)
	if err != nil {
		return permanent(fmt.Errorf("email: configure client: %w", err))
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return smtpError(ctx, err)
	}
	return nil
}

func (s *EmailSender) clientOptions(ctx context.Context) []gomail.Option {
	dial := func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		return s.dial(ctx, dialCtx, network, addr)
	}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.port),
		gomail.WithTimeout(s.timeout),
		gomail.WithHELO(s.helo),
		gomail.WithTLSConfig(s.cfg.tls),
		gomail.WithTLSPolicy(s.cfg.starttls),
		gomail.WithDialContextFunc(dial),
		gomail.WithSMTPAuth(s.cfg.auth),
	}
	if s.cfg.implicitTLS {
		// With a dial func go-mail does not wrap the connection in TLS
		// itself (dial does); WithSSL tells it not to try STARTTLS.
		opts = append(opts, gomail.WithSSL())
	}
	if s.cfg.auth != gomail.SMTPAuthNoAuth {
		opts = append(opts, gomail.WithUsername(s.cfg.user), gomail.WithPassword(s.cfg.pass))
	}
	return opts
}

// dial connects within dialCtx and ties the connection to the caller's ctx.
// go-mail cancels dialCtx once the session is set up and otherwise ignores
// ctx, so without the tie a cancelled task would keep its SMTP session open
// until the timeout.
func (s *EmailSender) dial(ctx, dialCtx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: s.timeout}
	raw, err := d.DialContext(dialCtx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := &ctxConn{Conn: raw}
	conn.stop = context.AfterFunc(ctx, func() { _ = raw.Close() })
	if !s.cfg.implicitTLS {
		return conn, nil
	}
	// Return the *tls.Conn itself: go-mail's SMTP client checks the type to
	// know the session is encrypted before it sends a password.
	tc := tls.Client(conn, s.cfg.tls)
	if err := tc.HandshakeContext(dialCtx); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// ctxConn releases its context.AfterFunc when closed, so a long-lived ctx
// does not keep finished connections referenced.
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// smtpError classifies a go-mail error by the SMTP reply code it carries.
func smtpError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &DeliveryError{Err: fmt.Errorf("email: %w: %w", ctxErr, err)}
	}
	code := replyCode(err)
	return &DeliveryError{Status: code, Permanent: code >= 500 && code <= 599, Err: fmt.Errorf("email: %w", err)}
}

// replyCode finds the SMTP reply code in err: go-mail reports MAIL, RCPT and
// DATA failures as *SendError, and greeting, EHLO and AUTH failures as the
// wrapped *textproto.Error. It returns 0 when the server sent no reply.
func replyCode(err error) int {
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return se.ErrorCode()
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
