package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Standard Webhooks header names (https://www.standardwebhooks.com).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

const (
	secretPrefix = "whsec_"
	// Key sizes: Standard Webhooks secrets decode to 24..64 bytes; a raw
	// secret must be long enough to resist guessing and short enough to
	// store in a column without surprise.
	minDecodedKey, maxDecodedKey = 24, 64
	minRawSecret, maxRawSecret   = 16, 256

	maxURLLen          = 2048
	maxResponseBody    = 64 << 10
	maxRetryAfter      = time.Hour
	defaultTimeout     = 10 * time.Second
	defaultTolerance   = 5 * time.Minute
	webhookUserAgent   = "creditd-webhook/1"
	signatureVersionV1 = "v1"
)

// Errors returned by Verify, so receivers can log why a request was refused.
var (
	ErrMissingHeader    = errors.New("webhook: missing signature header")
	ErrStaleTimestamp   = errors.New("webhook: timestamp outside tolerance")
	ErrInvalidSignature = errors.New("webhook: no matching signature")
)

// errPrivateAddress is returned by the dial guard; it makes a delivery
// permanent because the target will not stop being private by itself.
var errPrivateAddress = errors.New("refusing to connect to a loopback, private or link-local address")

// ValidateSecret checks a webhook signing secret: either "whsec_" followed by
// standard base64 that decodes to 24..64 bytes (the Standard Webhooks form),
// or a raw string of 16..256 bytes used as the key as is. Errors never quote
// the secret.
func ValidateSecret(secret string) error {
	_, err := secretKey(secret)
	return err
}

func secretKey(secret string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, errors.New("secret: the part after whsec_ is not valid standard base64")
		}
		if len(key) < minDecodedKey || len(key) > maxDecodedKey {
			return nil, fmt.Errorf("secret: whsec_ key decodes to %d bytes, want %d to %d", len(key), minDecodedKey, maxDecodedKey)
		}
		return key, nil
	}
	if len(secret) < minRawSecret || len(secret) > maxRawSecret {
		return nil, fmt.Errorf("secret: %d bytes, want a whsec_ base64 key or %d to %d raw bytes", len(secret), minRawSecret, maxRawSecret)
	}
	return []byte(secret), nil
}

// Sign returns the webhook-signature header value "v1,<base64 HMAC-SHA256>"
// over msgID + "." + unix seconds of ts + "." + body, as Standard Webhooks
// defines it.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	return signatureVersionV1 + "," + base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body)), nil
}

func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(unix, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received webhook the way a receiver should: all three
// headers present, the timestamp within tolerance of now (either direction,
// against replays), and at least one of the space-separated "v1,..."
// signatures matching in constant time. A tolerance <= 0 means the Standard
// Webhooks default of five minutes. It exists for receivers written in Go and
// for this package's tests.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	id, tsRaw, sigs := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature)
	for _, hv := range [...]struct{ name, value string }{
		{HeaderWebhookID, id}, {HeaderWebhookTimestamp, tsRaw}, {HeaderWebhookSignature, sigs},
	} {
		if hv.value == "" {
			return fmt.Errorf("%w: %s", ErrMissingHeader, hv.name)
		}
	}
	unix, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp is not unix seconds", ErrStaleTimestamp)
	}
	if tolerance <= 0 {
		tolerance = defaultTolerance
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: off by %s, tolerance %s", ErrStaleTimestamp, d.Round(time.Second), tolerance)
	}
	want := mac(key, id, unix, body)
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != signatureVersionV1 {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrInvalidSignature
}

// WebhookOptions configures a WebhookSender and ValidateWebhookURL.
type WebhookOptions struct {
	AllowPrivate bool             // CREDITD_WEBHOOK_ALLOW_PRIVATE: allow loopback/private/link-local targets
	RequireHTTPS bool             // CREDITD_WEBHOOK_REQUIRE_HTTPS: refuse http:// URLs
	Timeout      time.Duration    // per request, including reading the response; default 10s
	Now          func() time.Time // source of the webhook-timestamp; default time.Now
}

func (o WebhookOptions) withDefaults() WebhookOptions {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ValidateWebhookURL checks a webhook URL when an org registers it: absolute
// http or https, a host, no userinfo, no fragment, at most 2048 bytes, https
// when RequireHTTPS is set. Unless AllowPrivate is set it also refuses
// "localhost" and literal IP addresses that are loopback, private,
// link-local, unspecified or multicast. Host names are not resolved here: a
// name can point anywhere later, so WebhookSender checks the address again
// when it dials.
func ValidateWebhookURL(raw string, o WebhookOptions) error {
	u, err := checkURL(raw, o)
	if err != nil {
		return err
	}
	if o.AllowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return errors.New("url: localhost is not allowed (set CREDITD_WEBHOOK_ALLOW_PRIVATE to allow it)")
	}
	if ip, err := netip.ParseAddr(host); err == nil && disallowedIP(ip) {
		return fmt.Errorf("url: %s is a loopback, private, link-local, unspecified or multicast address (set CREDITD_WEBHOOK_ALLOW_PRIVATE to allow it)", ip)
	}
	return nil
}

// checkURL holds the structural URL checks, shared by ValidateWebhookURL and
// Send (which leaves the address checks to the dialer). Errors quote no part
// of the URL, since its query may hold a receiver's token.
func checkURL(raw string, o WebhookOptions) (*url.URL, error) {
	if len(raw) > maxURLLen {
		return nil, fmt.Errorf("url: %d bytes, at most %d allowed", len(raw), maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("url: not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("url: scheme must be http or https")
	case u.Hostname() == "":
		return nil, errors.New("url: host is missing")
	case u.User != nil:
		return nil, errors.New("url: must not contain a user or password")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, errors.New("url: must not contain a fragment")
	case o.RequireHTTPS && u.Scheme != "https":
		return nil, errors.New("url: must use https (CREDITD_WEBHOOK_REQUIRE_HTTPS is on)")
	}
	return u, nil
}

// Ranges refused besides the ones netip classifies: "this network" (Linux
// routes 0.x.x.x to the local host), carrier-grade NAT space (used for
// internal networks such as VPN overlays) and the limited broadcast address.
var extraDisallowed = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("255.255.255.255/32"),
}

// disallowedIP reports whether ip is a target a webhook must not reach unless
// private targets are allowed: anything that lands on this host or its
// internal networks (SSRF).
func disallowedIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range extraDisallowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// refusePrivate is a net.Dialer Control hook: it runs on the address actually
// being dialled, after DNS resolution, so a name that resolves (or rebinds) to
// a private address is refused too.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dial address", errPrivateAddress)
	}
	if disallowedIP(ap.Addr()) {
		return fmt.Errorf("%w: %s", errPrivateAddress, ap.Addr())
	}
	return nil
}

// WebhookSender POSTs signed webhook messages. It is safe for concurrent use
// and keeps connections alive between messages.
type WebhookSender struct {
	client *http.Client
	opts   WebhookOptions
}

// NewWebhookSender returns a sender configured by o. The transport ignores
// proxy settings from the environment: a proxy would dial on the sender's
// behalf and defeat the private-address guard.
func NewWebhookSender(o WebhookOptions) *WebhookSender {
	o = o.withDefaults()
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		dialer.Control = refusePrivate
	}
	transport := &http.Transport{
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    o.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseBody,
	}
	return &WebhookSender{
		opts: o,
		client: &http.Client{
			Transport: transport,
			Timeout:   o.Timeout,
			// A redirect is answered as a permanent failure: following it
			// would send the signed body to a target nobody validated.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Send makes one delivery attempt of body to rawURL, signed with secret under
// message id msgID and the current time. It returns nil on a 2xx answer and a
// *DeliveryError otherwise: transient for 408, 429, 5xx, timeouts and network
// errors; permanent for other statuses, a refused private address, a bad URL,
// secret or message id.
func (s *WebhookSender) Send(ctx context.Context, rawURL, secret, msgID string, body []byte) error {
	u, err := checkURL(rawURL, s.opts)
	if err != nil {
		return permanent(err)
	}
	if err := checkMessageID(msgID); err != nil {
		return permanent(fmt.Errorf("webhook: %w", err))
	}
	ts := s.opts.Now()
	sig, err := Sign(secret, msgID, ts, body)
	if err != nil {
		return permanent(fmt.Errorf("webhook: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return permanent(errors.New("webhook: cannot build request"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", webhookUserAgent)
	req.Header.Set(HeaderWebhookID, msgID)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderWebhookSignature, sig)

	resp, err := s.client.Do(req)
	if err != nil {
		return transportError(err)
	}
	defer resp.Body.Close()
	// Read a bounded amount so a keep-alive connection can often be reused
	// without letting a receiver stream an unbounded answer at us.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	return statusError(resp)
}

// transportError classifies an error from http.Client.Do. The *url.Error
// wrapper is dropped because its text holds the full URL.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &DeliveryError{Permanent: errors.Is(err, errPrivateAddress), Err: fmt.Errorf("webhook: %w", err)}
}

// statusError maps an HTTP answer to nil or a *DeliveryError.
func statusError(resp *http.Response) error {
	code := resp.StatusCode
	switch {
	case code >= 200 && code <= 299:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		de := &DeliveryError{Status: code}
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			de.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
		}
		return de
	default:
		return &DeliveryError{Status: code, Permanent: true}
	}
}

// retryAfter parses a Retry-After header given in seconds, capped at
// maxRetryAfter so a receiver cannot park a message for days. HTTP-date
// values and garbage yield 0 (use the normal backoff).
func retryAfter(v string) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	if n >= int64(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(n) * time.Second
}
