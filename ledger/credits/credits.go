// Package credits holds creditd's two exact amount types: Credits (int64
// millicredits, printed as decimal credit strings like "12.345") and Money
// (int64 minor currency units with an ISO currency). It lives under ledger
// because the ledger is the authority on amounts, yet config, jobs and the
// CLI must parse and print them without importing the ledger's SQL.
//
// No floating point is used anywhere: parsing and formatting are done on the
// decimal digits themselves.
package credits

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Millicredits per credit.
const Scale = 1000

// Credits is an exact amount of credits in millicredits (1 credit = 1000).
type Credits int64

// Errors returned by Parse. Callers wrap them with the field name.
var (
	ErrSyntax    = errors.New("not a decimal number")
	ErrPrecision = errors.New("more than 3 decimal places")
	ErrRange     = errors.New("out of range")
)

// FromCredits returns n whole credits.
func FromCredits(n int64) Credits { return Credits(n * Scale) }

// Parse reads a decimal credit string: an optional sign, digits, and at most
// three decimal places ("12", "-3.250", "0.001"). It refuses exponents,
// spaces, thousands separators and anything that overflows int64 millicredits.
func Parse(s string) (Credits, error) {
	v, err := parseScaled(s, 3)
	return Credits(v), err
}

// MustParse is Parse for constants in code and tests; it panics on error.
func MustParse(s string) Credits {
	c, err := Parse(s)
	if err != nil {
		panic(fmt.Sprintf("credits.MustParse(%q): %v", s, err))
	}
	return c
}

// String formats c with exactly three decimals: "12.345", "-0.500", "0.000".
func (c Credits) String() string { return formatScaled(int64(c), 3) }

// MarshalText makes Credits a decimal string in JSON and YAML.
func (c Credits) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses a decimal credit string.
func (c *Credits) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Neg returns -c.
func (c Credits) Neg() Credits { return -c }

// Add returns c+d and false when the sum overflows int64.
func (c Credits) Add(d Credits) (Credits, bool) {
	s := c + d
	if (d > 0 && s < c) || (d < 0 && s > c) {
		return 0, false
	}
	return s, true
}

// MulInt returns c*n and false when the product overflows int64.
func (c Credits) MulInt(n int64) (Credits, bool) {
	if c == 0 || n == 0 {
		return 0, true
	}
	p := int64(c) * n
	if p/n != int64(c) || (int64(c) == -1 && n == math.MinInt64) || (n == -1 && int64(c) == math.MinInt64) {
		return 0, false
	}
	return Credits(p), true
}

// parseScaled parses a decimal string into an integer scaled by 10^places.
func parseScaled(s string, places int) (int64, error) {
	if s == "" {
		return 0, ErrSyntax
	}
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return 0, ErrSyntax
	}
	if hasDot && frac == "" {
		return 0, ErrSyntax
	}
	if !allDigits(intPart) || !allDigits(frac) {
		return 0, ErrSyntax
	}
	if len(frac) > places {
		// "1.2500" is still exact; only non-zero digits past the scale are refused.
		if strings.Trim(frac[places:], "0") != "" {
			return 0, ErrPrecision
		}
		frac = frac[:places]
	}
	frac += strings.Repeat("0", places-len(frac))
	intPart = strings.TrimLeft(intPart, "0")
	// Accumulate as a negative number so that math.MinInt64 is representable.
	var v int64
	for _, r := range intPart + frac {
		d := int64(r - '0')
		if v < (math.MinInt64+d)/10 {
			return 0, ErrRange
		}
		v = v*10 - d
	}
	if !neg {
		if v == math.MinInt64 {
			return 0, ErrRange
		}
		v = -v
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// formatScaled prints v/10^places with exactly places decimals.
func formatScaled(v int64, places int) string {
	neg := v < 0
	// Work on the unsigned magnitude so math.MinInt64 prints correctly.
	u := uint64(v)
	if neg {
		u = -u
	}
	digits := fmt.Sprintf("%0*d", places+1, u)
	out := digits
	if places > 0 {
		cut := len(digits) - places
		out = digits[:cut] + "." + digits[cut:]
	}
	if neg {
		out = "-" + out
	}
	return out
}
