package ledger

import (
	"regexp"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLen bounds idempotency keys, event ids and hold ids.
const MaxKeyLen = 200

// MaxAmount bounds any single amount (a grant, a usage cost, a hold, a
// limit): 10^12 credits. With it, sums of thousands of operations stay far
// from int64's 9.2·10^15 credits, and post() refuses the rare sum that would
// not.
const MaxAmount = 1_000_000_000_000 * 1000

// validAmount checks a positive amount within MaxAmount.
func validAmount(field string, a int64) error {
	if a <= 0 {
		return invalid(field, "must be positive")
	}
	if a > MaxAmount {
		return invalid(field, "larger than the maximum of 1000000000000 credits")
	}
	return nil
}

var orgIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

func validOrgID(id string) error {
	if id == "" {
		return invalid("org", "required")
	}
	if !orgIDPattern.MatchString(id) {
		return invalid("org", "%q must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", id)
	}
	return nil
}

// validKey checks an idempotency key, event id or hold id.
func validKey(field, s string) error {
	if s == "" {
		return invalid(field, "required")
	}
	if len(s) > MaxKeyLen {
		return invalid(field, "longer than %d bytes", MaxKeyLen)
	}
	if !utf8.ValidString(s) {
		return invalid(field, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return invalid(field, "contains a space or control character")
		}
	}
	return nil
}

// validLabel checks an optional team, user or feature name.
func validLabel(field, s string) error {
	if s == "" {
		return nil
	}
	return validKey(field, s)
}
