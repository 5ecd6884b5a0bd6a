package notify

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DeliveryError is the result of a failed delivery attempt. The outbox acts on
// it: Permanent means another attempt with the same input cannot succeed (give
// up and record why); otherwise retry, no sooner than RetryAfter when set.
type DeliveryError struct {
	// Status is the HTTP status for webhooks or the SMTP reply code for
	// email; 0 when no reply was received.
	Status int
	// Permanent reports that retrying cannot help.
	Permanent bool
	// RetryAfter is the delay the receiver asked for (HTTP Retry-After on 429
	// and 503, seconds only, capped at maxRetryAfter); 0 when absent.
	RetryAfter time.Duration
	// Err is the underlying cause, if any. It never holds a secret, a
	// password or a full URL.
	Err error
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	b.WriteString("notify: ")
	if e.Permanent {
		b.WriteString("permanent")
	} else {
		b.WriteString("transient")
	}
	b.WriteString(" delivery failure")
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is (or wraps) a *DeliveryError marked
// permanent. Any other error counts as transient, so an unexpected failure is
// retried rather than dropped.
func IsPermanent(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de) && de.Permanent
}

func permanent(err error) error { return &DeliveryError{Permanent: true, Err: err} }

// maxMessageIDLen bounds message ids; they travel in headers of both channels.
const maxMessageIDLen = 255

// checkMessageID accepts ids made of letters, digits and ". _ -", which are
// safe in an HTTP header and in the local part of an email Message-ID
// (RFC 5322 dot-atom) without quoting.
func checkMessageID(id string) error {
	if id == "" {
		return errors.New("message id is empty")
	}
	if len(id) > maxMessageIDLen {
		return fmt.Errorf("message id is %d bytes, at most %d allowed", len(id), maxMessageIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("message id has character %q; only letters, digits and . _ - are allowed", c)
		}
	}
	if id[0] == '.' || id[len(id)-1] == '.' || strings.Contains(id, "..") {
		return errors.New("message id must not start or end with '.' or hold '..'")
	}
	return nil
}
