// Package config holds creditd's environment configuration and the catalog.
//
// Config is read once at start from the environment (12-factor) and
// validated as a whole, so an operator sees every problem at once, each
// naming the variable. The catalog (plans, credit packages, feature rates,
// purchase terms and alert defaults) comes from a YAML file or, when none is
// given, from the built-in default that reflects the seeds; it is validated
// at start too, and every problem names the file, the field and the reason.
//
// Neither is a global: callers pass a Config and a *Catalog to what needs
// them.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
)

// DefaultHTTPAddr is where `creditd web` listens unless CREDITD_HTTP_ADDR
// says otherwise: localhost only, so the UI and API are not open by default.
const DefaultHTTPAddr = "127.0.0.1:8080"

// Names of the environment variables creditd reads.
const (
	EnvDatabaseURL         = "DATABASE_URL"
	EnvRedisURL            = "REDIS_URL"
	EnvHTTPAddr            = "CREDITD_HTTP_ADDR"
	EnvAPIToken            = "CREDITD_API_TOKEN"
	EnvCatalog             = "CREDITD_CATALOG"
	EnvStripeSecretKey     = "STRIPE_SECRET_KEY"
	EnvStripeWebhookSecret = "STRIPE_WEBHOOK_SECRET"
	EnvStripeAPIBase       = "STRIPE_API_BASE"
	EnvSMTPURL             = "SMTP_URL"
	EnvSMTPFrom            = "SMTP_FROM"
	EnvWebhookAllowPrivate = "CREDITD_WEBHOOK_ALLOW_PRIVATE"
	EnvWebhookRequireHTTPS = "CREDITD_WEBHOOK_REQUIRE_HTTPS"
	EnvLinkBase            = "CREDITD_LINK_BASE"
)

// Config is the process configuration from the environment (12-factor).
type Config struct {
	DatabaseURL         string // DATABASE_URL (required)
	RedisURL            string // REDIS_URL (required)
	HTTPAddr            string // CREDITD_HTTP_ADDR, default "127.0.0.1:8080"
	APIToken            string // CREDITD_API_TOKEN (operator token; may be empty -> web refuses /v1 and /monitor/ later)
	CatalogPath         string // CREDITD_CATALOG (empty = built-in default catalog)
	StripeSecretKey     string // STRIPE_SECRET_KEY
	StripeWebhookSecret string // STRIPE_WEBHOOK_SECRET
	StripeAPIBase       string // STRIPE_API_BASE (must be an http(s) URL when set)
	SMTPURL             string // SMTP_URL smtp://user:pass@host:port or smtps://...
	SMTPFrom            string // SMTP_FROM
	WebhookAllowPrivate bool   // CREDITD_WEBHOOK_ALLOW_PRIVATE ("true"/"false"/"1"/"0"; anything else is an error)
	WebhookRequireHTTPS bool   // CREDITD_WEBHOOK_REQUIRE_HTTPS, default false: when true, alert webhooks must use https://
	LinkBase            string // CREDITD_LINK_BASE: the host application's URL that alert messages link to (optional)
}

// EnvError is one problem with one environment variable. Its message never
// contains the variable's value, which may hold a secret.
type EnvError struct {
	Var    string // the environment variable, e.g. "REDIS_URL"
	Reason string
}

func (e *EnvError) Error() string { return e.Var + ": " + e.Reason }

// FromEnv reads the configuration with getenv (os.Getenv in main, a map in
// tests), applies defaults and validates it. The error joins every problem
// found; the returned Config holds what could be read even when it is
// non-nil.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:         getenv(EnvDatabaseURL),
		RedisURL:            getenv(EnvRedisURL),
		HTTPAddr:            getenv(EnvHTTPAddr),
		APIToken:            getenv(EnvAPIToken),
		CatalogPath:         getenv(EnvCatalog),
		StripeSecretKey:     getenv(EnvStripeSecretKey),
		StripeWebhookSecret: getenv(EnvStripeWebhookSecret),
		StripeAPIBase:       getenv(EnvStripeAPIBase),
		SMTPURL:             getenv(EnvSMTPURL),
		SMTPFrom:            getenv(EnvSMTPFrom),
		LinkBase:            strings.TrimRight(getenv(EnvLinkBase), "/"),
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	var errs []error
	var err error
	if c.WebhookAllowPrivate, c.WebhookRequireHTTPS, err = WebhookPolicyFromEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Validate())
	return c, errors.Join(errs...)
}

// WebhookPolicyFromEnv reads only CREDITD_WEBHOOK_ALLOW_PRIVATE and
// CREDITD_WEBHOOK_REQUIRE_HTTPS (both default false), for the commands that
// check a webhook URL the way the workers will deliver to it. (SPEC names
// only the first; plain http stays allowed by default so that a receiver on
// an allowed private address works without TLS.)
func WebhookPolicyFromEnv(getenv func(string) string) (allowPrivate, requireHTTPS bool, err error) {
	allowPrivate, err1 := envBool(getenv, EnvWebhookAllowPrivate, false)
	requireHTTPS, err2 := envBool(getenv, EnvWebhookRequireHTTPS, false)
	return allowPrivate, requireHTTPS, errors.Join(err1, err2)
}

// envBool reads a boolean variable: true, false, 1, 0, or unset for def. A
// typo must not silently leave a guard on or off, so anything else is an
// error.
func envBool(getenv func(string) string, name string, def bool) (bool, error) {
	switch v := getenv(name); v {
	case "":
		return def, nil
	case "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return def, &EnvError{Var: name, Reason: fmt.Sprintf("%q is not one of true, false, 1, 0", v)}
	}
}

// Validate reports every problem with c, joined with errors.Join; each is an
// *EnvError naming its environment variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, &EnvError{Var: env, Reason: fmt.Sprintf(format, args...)})
	}

	// URL parse errors quote the whole URL, password included, so they are
	// never passed on: only what is wrong, not what the value was.
	switch u, err := url.Parse(c.DatabaseURL); {
	case c.DatabaseURL == "":
		bad(EnvDatabaseURL, "required")
	case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"):
		bad(EnvDatabaseURL, "not a postgres:// or postgresql:// URL")
	}

	switch u, err := url.Parse(c.RedisURL); {
	case c.RedisURL == "":
		bad(EnvRedisURL, "required")
	case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss"):
		bad(EnvRedisURL, "not a redis:// or rediss:// URL")
	case u.Host == "":
		bad(EnvRedisURL, "no host")
	}

	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad(EnvHTTPAddr, "%q is not host:port", c.HTTPAddr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad(EnvHTTPAddr, "port %q is not a number from 0 to 65535", port)
	}

	if c.StripeAPIBase != "" {
		u, err := url.Parse(c.StripeAPIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(EnvStripeAPIBase, "not an http:// or https:// URL")
		}
	}

	if c.SMTPURL != "" {
		switch u, err := url.Parse(c.SMTPURL); {
		case err != nil:
			bad(EnvSMTPURL, "not a URL")
		case u.Scheme != "smtp" && u.Scheme != "smtps":
			bad(EnvSMTPURL, "scheme must be smtp or smtps")
		case u.Hostname() == "":
			bad(EnvSMTPURL, "no host")
		case u.Port() != "" && !validPort(u.Port()):
			bad(EnvSMTPURL, "port %q is not a number from 1 to 65535", u.Port())
		}
		if c.SMTPFrom == "" {
			bad(EnvSMTPFrom, "required when SMTP_URL is set")
		}
	}
	if c.LinkBase != "" {
		u, err := url.Parse(c.LinkBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(EnvLinkBase, "not an http:// or https:// URL")
		}
	}
	if c.SMTPFrom != "" {
		if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
			bad(EnvSMTPFrom, "not an email address: %v", err)
		}
	}
	return errors.Join(errs...)
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 65535
}

// String describes c for logs: the API token and the Stripe keys are shown
// only as set or unset, and passwords in URLs are replaced by "xxxxx".
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("config{")
	for i, f := range c.fields() {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(f.Key)
		b.WriteString("=")
		b.WriteString(f.Value.String())
	}
	b.WriteString("}")
	return b.String()
}

// GoString keeps %#v from printing the secrets String hides.
func (c Config) GoString() string { return c.String() }

// LogValue makes slog log the redacted fields, whatever the handler.
func (c Config) LogValue() slog.Value { return slog.GroupValue(c.fields()...) }

func (c Config) fields() []slog.Attr {
	return []slog.Attr{
		slog.String("database_url", redactURL(c.DatabaseURL)),
		slog.String("redis_url", redactURL(c.RedisURL)),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("api_token", redactSecret(c.APIToken)),
		slog.String("catalog", c.CatalogPath),
		slog.String("stripe_secret_key", redactSecret(c.StripeSecretKey)),
		slog.String("stripe_webhook_secret", redactSecret(c.StripeWebhookSecret)),
		slog.String("stripe_api_base", redactURL(c.StripeAPIBase)),
		slog.String("smtp_url", redactURL(c.SMTPURL)),
		slog.String("smtp_from", c.SMTPFrom),
		slog.Bool("webhook_allow_private", c.WebhookAllowPrivate),
		slog.Bool("webhook_require_https", c.WebhookRequireHTTPS),
		slog.String("link_base", c.LinkBase),
	}
}

const (
	unset    = "(unset)"
	redacted = "(redacted)"
)

func redactSecret(s string) string {
	if s == "" {
		return unset
	}
	return redacted
}

// secretQueryKey reports whether a URL query parameter may carry a secret
// (libpq's password and sslpassword, tokens, keys).
func secretQueryKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "secret", "token", "key", "auth"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// redactURL hides the password in a URL's user info and the values of query
// parameters that may be secrets. A value that does not parse as a URL is
// hidden entirely: it could be anything.
func redactURL(s string) string {
	if s == "" {
		return unset
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return redacted
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "xxxxx"
		} else {
			for k := range q {
				if secretQueryKey(k) {
					q[k] = []string{"xxxxx"}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}
