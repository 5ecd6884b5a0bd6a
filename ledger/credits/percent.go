package credits

import (
	"fmt"
	"math/big"
	"strings"
)

// Percent is an exact percentage in basis points (1% = 100), for alert
// thresholds such as "below 2.5% of the monthly allocation".
type Percent int

// ParsePercent reads a percentage from 0.01 to 100 with at most two decimal
// places ("20", "2.5", "0.25"); a trailing "%" is allowed.
func ParsePercent(s string) (Percent, error) {
	v, err := parseScaled(strings.TrimSuffix(s, "%"), 2)
	if err != nil {
		if err == ErrPrecision {
			return 0, fmt.Errorf("more than 2 decimal places")
		}
		return 0, err
	}
	if v <= 0 || v > 100_00 {
		return 0, fmt.Errorf("must be more than 0 and at most 100")
	}
	return Percent(v), nil
}

// String prints the percentage without a sign and without trailing zeros:
// "20", "2.5", "0.25".
func (p Percent) String() string {
	s := formatScaled(int64(p), 2)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// MarshalText prints p as String does, so JSON carries "2.5".
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses as ParsePercent.
func (p *Percent) UnmarshalText(b []byte) error {
	v, err := ParsePercent(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Of returns p of c rounded up to the millicredit, the least amount that is
// not below the exact share (20% of 0.004 credits is 0.001). Big integers
// keep the product exact for any int64 amount.
func (p Percent) Of(c Credits) Credits {
	n := new(big.Int).Mul(big.NewInt(int64(c)), big.NewInt(int64(p)))
	q, m := new(big.Int).DivMod(n, big.NewInt(100_00), new(big.Int))
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return Credits(q.Int64())
}

// Reached reports whether used is at least p of limit, exactly.
func (p Percent) Reached(used, limit Credits) bool {
	lhs := new(big.Int).Mul(big.NewInt(int64(used)), big.NewInt(100_00))
	rhs := new(big.Int).Mul(big.NewInt(int64(limit)), big.NewInt(int64(p)))
	return lhs.Cmp(rhs) >= 0
}
