package ledger

import (
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

// maxOrgIDLen bounds org ids.
const maxOrgIDLen = 128

// validOrgID checks an org id: 1-128 letters, digits, '.', '_', ':' or '-',
// starting with a letter or digit. A loop rather than a regexp: it runs for
// every usage event, and the regexp was 5% of a busy worker's CPU.
func validOrgID(id string) error {
	if id == "" {
		return invalid("org", "required")
	}
	ok := len(id) <= maxOrgIDLen && isAlnum(id[0])
	for i := 1; ok && i < len(id); i++ {
		c := id[i]
		ok = isAlnum(c) || c == '.' || c == '_' || c == ':' || c == '-'
	}
	if !ok {
		return invalid("org", "%q must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", id)
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
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
