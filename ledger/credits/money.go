package credits

import (
	"fmt"
	"strings"
)

// Money is an exact amount in a currency's minor units (cents for USD).
type Money struct {
	Minor    int64  `json:"minor"`
	Currency string `json:"currency"`
}

// minorDigits is the number of decimals for currencies that do not use two.
var minorDigits = map[string]int{"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}

// MinorDigits reports how many decimals the currency's minor unit has.
func MinorDigits(currency string) int {
	if d, ok := minorDigits[strings.ToUpper(currency)]; ok {
		return d
	}
	return 2
}

// ValidCurrency reports whether code looks like an ISO 4217 code (three
// letters, upper case). creditd does not keep the full ISO list: Stripe is
// the authority on which currencies it accepts.
func ValidCurrency(code string) bool {
	if len(code) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if code[i] < 'A' || code[i] > 'Z' {
			return false
		}
	}
	return true
}

// ParseMoney reads a decimal amount of currency ("29.00", "5") into minor units.
func ParseMoney(s, currency string) (Money, error) {
	currency = strings.ToUpper(currency)
	if !ValidCurrency(currency) {
		return Money{}, fmt.Errorf("currency %q: not a three-letter ISO 4217 code", currency)
	}
	v, err := parseScaled(s, MinorDigits(currency))
	if err != nil {
		return Money{}, err
	}
	return Money{Minor: v, Currency: currency}, nil
}

// String prints the amount with its currency: "29.00 USD".
func (m Money) String() string {
	return formatScaled(m.Minor, MinorDigits(m.Currency)) + " " + m.Currency
}

// Decimal prints the amount without the currency: "29.00".
func (m Money) Decimal() string { return formatScaled(m.Minor, MinorDigits(m.Currency)) }
