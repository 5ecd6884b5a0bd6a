package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// env returns a getenv over the required variables plus extra ("" removes a
// variable).
func env(extra map[string]string) func(string) string {
	m := map[string]string{
		EnvDatabaseURL: "postgres://creditd@localhost:5432/creditd?sslmode=disable",
		EnvRedisURL:    "redis://localhost:6379/0",
	}
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func TestFromEnv_Defaults(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DatabaseURL: "postgres://creditd@localhost:5432/creditd?sslmode=disable",
		RedisURL:    "redis://localhost:6379/0",
		HTTPAddr:    "127.0.0.1:8080",
	}
	if c != want {
		t.Errorf("FromEnv = %#v, want %#v", c, want)
	}
}

func TestFromEnv_All(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(map[string]string{
		EnvHTTPAddr:            ":9090",
		EnvAPIToken:            "tok",
		EnvCatalog:             "/etc/creditd/catalog.yaml",
		EnvStripeSecretKey:     "sk_test_1",
		EnvStripeWebhookSecret: "whsec_1",
		EnvStripeAPIBase:       "http://127.0.0.1:12111",
		EnvSMTPURL:             "smtps://user:pw@mail.example.com:465",
		EnvSMTPFrom:            "Billing <billing@example.com>",
		EnvWebhookAllowPrivate: "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9090" || c.APIToken != "tok" || c.CatalogPath != "/etc/creditd/catalog.yaml" ||
		c.StripeSecretKey != "sk_test_1" || c.StripeWebhookSecret != "whsec_1" || c.StripeAPIBase != "http://127.0.0.1:12111" ||
		c.SMTPURL != "smtps://user:pw@mail.example.com:465" || c.SMTPFrom != "Billing <billing@example.com>" || !c.WebhookAllowPrivate {
		t.Errorf("FromEnv = %v", c)
	}
}

func TestFromEnv_WebhookAllowPrivate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value   string
		want    bool
		wantErr bool
	}{
		{"", false, false},
		{"false", false, false},
		{"0", false, false},
		{"true", true, false},
		{"1", true, false},
		{"yes", false, true},
		{"TRUE", false, true},
		{" true", false, true},
		{"on", false, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.value), func(t *testing.T) {
			t.Parallel()
			c, err := FromEnv(env(map[string]string{EnvWebhookAllowPrivate: tt.value}))
			if tt.wantErr {
				var ee *EnvError
				if !errors.As(err, &ee) || ee.Var != EnvWebhookAllowPrivate || !strings.HasPrefix(err.Error(), "CREDITD_WEBHOOK_ALLOW_PRIVATE: ") {
					t.Errorf("err = %v, want a CREDITD_WEBHOOK_ALLOW_PRIVATE error", err)
				}
				return
			}
			if err != nil || c.WebhookAllowPrivate != tt.want {
				t.Errorf("FromEnv = %t, %v; want %t", c.WebhookAllowPrivate, err, tt.want)
			}
		})
	}
}

func TestFromEnv_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra map[string]string
		want  string
	}{
		{"MissingDatabaseURL", map[string]string{EnvDatabaseURL: ""}, "DATABASE_URL: required"},
		{"DatabaseURLScheme", map[string]string{EnvDatabaseURL: "mysql://u:secretpw@h/db"}, "DATABASE_URL: not a postgres:// or postgresql:// URL"},
		{"DatabaseURLUnparsable", map[string]string{EnvDatabaseURL: "postgres://u:secretpw@h:port/db"}, "DATABASE_URL: not a postgres:// or postgresql:// URL"},
		{"MissingRedisURL", map[string]string{EnvRedisURL: ""}, "REDIS_URL: required"},
		{"RedisURLScheme", map[string]string{EnvRedisURL: "localhost:6379"}, "REDIS_URL: not a redis:// or rediss:// URL"},
		{"RedisURLNoHost", map[string]string{EnvRedisURL: "redis:///0"}, "REDIS_URL: no host"},
		{"HTTPAddrNoPort", map[string]string{EnvHTTPAddr: "localhost"}, `CREDITD_HTTP_ADDR: "localhost" is not host:port`},
		{"HTTPAddrBadPort", map[string]string{EnvHTTPAddr: "localhost:99999"}, `CREDITD_HTTP_ADDR: port "99999" is not a number from 0 to 65535`},
		{"StripeAPIBase", map[string]string{EnvStripeAPIBase: "localhost:12111"}, "STRIPE_API_BASE: not an http:// or https:// URL"},
		{"StripeAPIBaseFTP", map[string]string{EnvStripeAPIBase: "ftp://example.com"}, "STRIPE_API_BASE: not an http:// or https:// URL"},
		{"SMTPScheme", map[string]string{EnvSMTPURL: "http://mail.example.com", EnvSMTPFrom: "a@example.com"}, "SMTP_URL: scheme must be smtp or smtps"},
		{"SMTPNoHost", map[string]string{EnvSMTPURL: "smtp://", EnvSMTPFrom: "a@example.com"}, "SMTP_URL: no host"},
		{"SMTPBadPort", map[string]string{EnvSMTPURL: "smtp://mail.example.com:0", EnvSMTPFrom: "a@example.com"}, `SMTP_URL: port "0" is not a number from 1 to 65535`},
		{"SMTPFromMissing", map[string]string{EnvSMTPURL: "smtp://mail.example.com:587"}, "SMTP_FROM: required when SMTP_URL is set"},
		{"SMTPFromInvalid", map[string]string{EnvSMTPFrom: "not an address"}, "SMTP_FROM: not an email address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := FromEnv(env(tt.extra))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

func TestFromEnv_AllProblemsJoined(t *testing.T) {
	t.Parallel()
	_, err := FromEnv(func(string) string { return "" })
	want := "DATABASE_URL: required\nREDIS_URL: required"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	_, err = FromEnv(func(k string) string {
		if k == EnvWebhookAllowPrivate {
			return "maybe"
		}
		return ""
	})
	if n := len(unjoinAll(err)); n != 3 {
		t.Errorf("%d problems in %v, want 3", n, err)
	}
}

// unjoinAll flattens nested errors.Join trees.
func unjoinAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoinAll(e)...)
		}
		return out
	}
	return []error{err}
}

func TestConfig_StringRedacts(t *testing.T) {
	t.Parallel()
	c := Config{
		DatabaseURL:         "postgres://creditd:dbpass-1@db.internal:5432/creditd?sslmode=require&password=qpass-2",
		RedisURL:            "rediss://default:redispass-3@cache.internal:6380/0",
		HTTPAddr:            "127.0.0.1:8080",
		APIToken:            "optoken-4",
		CatalogPath:         "/etc/creditd/catalog.yaml",
		StripeSecretKey:     "sk_live_5",
		StripeWebhookSecret: "whsec_6",
		StripeAPIBase:       "https://stripeuser:stripepass-7@api.stripe.com",
		SMTPURL:             "smtps://mailer:smtppass-8@mail.example.com:465",
		SMTPFrom:            "billing@example.com",
	}
	secrets := []string{"dbpass-1", "qpass-2", "redispass-3", "optoken-4", "sk_live_5", "whsec_6", "stripepass-7", "smtppass-8"}
	kept := []string{"db.internal:5432", "sslmode=require", "cache.internal:6380", "127.0.0.1:8080", "/etc/creditd/catalog.yaml",
		"api.stripe.com", "mail.example.com:465", "billing@example.com", "api_token=(redacted)"}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "config", c)
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("start", "config", c)
	outputs := map[string]string{
		"String": c.String(),
		"%v":     fmt.Sprintf("%v", c),
		"%+v":    fmt.Sprintf("%+v", c),
		"%#v":    fmt.Sprintf("%#v", c),
		"%v ptr": fmt.Sprintf("%v", &c),
		"slog":   logged.String(),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows secret %q: %s", name, s, out)
			}
		}
	}
	for _, s := range kept {
		if !strings.Contains(c.String(), s) {
			t.Errorf("String() lacks %q: %s", s, c.String())
		}
	}
	for _, s := range secrets {
		if strings.Contains(text.String(), s) {
			t.Errorf("slog text shows secret %q: %s", s, text.String())
		}
	}
	if !strings.Contains(logged.String(), `"redis_url":"rediss://default:xxxxx@cache.internal:6380/0"`) {
		t.Errorf("slog JSON = %s", logged.String())
	}
}

func TestConfig_StringUnsetAndUnparsable(t *testing.T) {
	t.Parallel()
	c := Config{DatabaseURL: "postgres://u:pw-secret@h:port/db"} // does not parse
	s := c.String()
	if strings.Contains(s, "pw-secret") {
		t.Errorf("String() = %s shows the password of an unparsable URL", s)
	}
	if !strings.Contains(s, "database_url=(redacted)") || !strings.Contains(s, "api_token=(unset)") || !strings.Contains(s, "redis_url=(unset)") {
		t.Errorf("String() = %s", s)
	}
}

func TestFromEnv_AlertSettings(t *testing.T) {
	t.Parallel()
	base := map[string]string{EnvDatabaseURL: "postgres://localhost/x", EnvRedisURL: "redis://localhost:6379/0"}
	with := func(kv ...string) func(string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name         string
		getenv       func(string) string
		requireHTTPS bool
		linkBase     string
		badVar       string
	}{
		{"defaults", with(), false, "", ""},
		{"https required", with(EnvWebhookRequireHTTPS, "true"), true, "", ""},
		{"link base without trailing slash", with(EnvLinkBase, "https://app.example.com/"), false, "https://app.example.com", ""},
		{"typo in the https switch", with(EnvWebhookRequireHTTPS, "no"), false, "", EnvWebhookRequireHTTPS},
		{"link base not a URL", with(EnvLinkBase, "app.example.com"), false, "app.example.com", EnvLinkBase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := FromEnv(tt.getenv)
			if tt.badVar != "" {
				var ee *EnvError
				if !errors.As(err, &ee) || ee.Var != tt.badVar {
					t.Fatalf("err = %v, want one naming %s", err, tt.badVar)
				}
				return
			}
			if err != nil || c.WebhookRequireHTTPS != tt.requireHTTPS || c.LinkBase != tt.linkBase {
				t.Fatalf("FromEnv = %+v, %v; want require https %v, link base %q", c, err, tt.requireHTTPS, tt.linkBase)
			}
		})
	}
}
