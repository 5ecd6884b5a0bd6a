package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"regexp"
	"slices"
	"strings"

	"github.com/creditd/creditd/ledger/credits"
)

// Catalog: plans, credit packages, feature rates, purchase terms, alert defaults.
//
// A Catalog is read once at start and then only read; nothing in creditd
// changes it while running. Plans and features are looked up by name with
// Plan and FeatureRate.
type Catalog struct {
	Currency string                     `yaml:"currency"` // default "USD"
	Plans    map[string]Plan            `yaml:"plans"`
	Packages map[string]Package         `yaml:"packages"`
	Features map[string]credits.Credits `yaml:"features"` // credits per unit of use
	Purchase Purchase                   `yaml:"purchase"`
	Alerts   AlertDefaults              `yaml:"alerts"`
}

// Plan is what an org's subscription gives it each cycle.
type Plan struct {
	Name           string           `yaml:"-"` // filled from the map key
	MonthlyCredits credits.Credits  `yaml:"monthly_credits"`
	RolloverMonths int              `yaml:"rollover_months"` // 0 = expire at cycle end; M = kept M further cycles
	RolloverCap    *credits.Credits `yaml:"rollover_cap"`    // nil = no cap
	IncludedRuns   int64            `yaml:"included_runs"`
	Overage        Overage          `yaml:"overage"` // default {Runs:100, Credits:1 credit}
	Price          string           `yaml:"price"`   // monthly price as a decimal string in Catalog.Currency, parsed into PriceMoney at load
	PriceMoney     credits.Money    `yaml:"-"`
	PerOrg         bool             `yaml:"per_org"` // enterprise: terms are set per org
}

// Overage: `Credits` credits for every `Runs` runs past the included runs.
// Cost of the first n overage runs = n*Credits/Runs rounded down to a millicredit;
// a charge is computed as Cost(after) - Cost(before) so no rounding drift accumulates.
type Overage struct {
	Runs    int64           `yaml:"runs"`
	Credits credits.Credits `yaml:"credits"`
}

// DefaultOverage is the overage rate of a plan that does not set one: one
// credit per 100 runs (SPEC "Units"; seed 004).
func DefaultOverage() Overage {
	return Overage{Runs: 100, Credits: credits.FromCredits(1)}
}

// ErrOverflow is returned when an amount does not fit in int64.
var ErrOverflow = errors.New("amount out of range")

// Cost returns what the first runs overage runs cost: runs*o.Credits/o.Runs,
// rounded down to a millicredit, computed exactly in 128 bits.
func (o Overage) Cost(runs int64) (credits.Credits, error) {
	switch {
	case o.Runs <= 0:
		return 0, fmt.Errorf("overage: runs must be positive, got %d", o.Runs)
	case o.Credits < 0:
		return 0, fmt.Errorf("overage: credits must not be negative, got %s", o.Credits)
	case runs < 0:
		return 0, fmt.Errorf("overage: run count must not be negative, got %d", runs)
	}
	hi, lo := bits.Mul64(uint64(runs), uint64(o.Credits))
	if hi >= uint64(o.Runs) { // the quotient would not fit in 64 bits
		return 0, fmt.Errorf("overage: cost of %d runs: %w", runs, ErrOverflow)
	}
	q, _ := bits.Div64(hi, lo, uint64(o.Runs))
	if q > math.MaxInt64 {
		return 0, fmt.Errorf("overage: cost of %d runs: %w", runs, ErrOverflow)
	}
	return credits.Credits(q), nil
}

// Package is a credit package sold at a fixed price.
type Package struct {
	Name       string          `yaml:"-"` // filled from the map key
	Credits    credits.Credits `yaml:"credits"`
	Price      string          `yaml:"price"` // decimal string in Catalog.Currency, parsed into PriceMoney at load
	PriceMoney credits.Money   `yaml:"-"`
}

// Purchase holds the terms of one-time purchases of any amount.
type Purchase struct {
	CreditsPerUnit         credits.Credits `yaml:"credits_per_unit"` // credits per 1.00 of currency; default 1
	Minimum                string          `yaml:"minimum"`          // default "5.00"
	MinimumMoney           credits.Money   `yaml:"-"`
	CustomCreditPrice      string          `yaml:"custom_credit_price"` // optional: price of one credit where sold that way (default catalog: "50.00")
	CustomCreditPriceMoney *credits.Money  `yaml:"-"`
}

// ErrBelowMinimum is returned by CreditsFor for a payment below the minimum
// purchase.
var ErrBelowMinimum = errors.New("below the minimum purchase")

// CreditsFor returns the credits a one-time purchase of m buys: m times
// CreditsPerUnit, exact in 128 bits and rounded down to a millicredit (which
// never happens with the default rate). m must be in the catalog currency and
// at least the minimum.
func (p Purchase) CreditsFor(m credits.Money) (credits.Credits, error) {
	switch {
	case p.CreditsPerUnit <= 0:
		return 0, fmt.Errorf("purchase: credits_per_unit must be positive, got %s", p.CreditsPerUnit)
	case p.MinimumMoney.Currency == "":
		return 0, errors.New("purchase: the terms have no currency (minimum not loaded)")
	case m.Currency != p.MinimumMoney.Currency:
		return 0, fmt.Errorf("purchase: paid in %q, but purchases are in %s", m.Currency, p.MinimumMoney.Currency)
	case m.Minor < p.MinimumMoney.Minor:
		return 0, fmt.Errorf("purchase of %s: %w of %s", m, ErrBelowMinimum, p.MinimumMoney)
	case m.Minor <= 0:
		return 0, fmt.Errorf("purchase of %s: amount must be positive", m)
	}
	perUnit := uint64(1)
	for range credits.MinorDigits(m.Currency) {
		perUnit *= 10
	}
	hi, lo := bits.Mul64(uint64(m.Minor), uint64(p.CreditsPerUnit))
	if hi >= perUnit {
		return 0, fmt.Errorf("purchase of %s: %w", m, ErrOverflow)
	}
	q, _ := bits.Div64(hi, lo, perUnit)
	if q > math.MaxInt64 {
		return 0, fmt.Errorf("purchase of %s: %w", m, ErrOverflow)
	}
	return credits.Credits(q), nil
}

// AlertDefaults are the alert rules an org gets unless it sets its own.
type AlertDefaults struct {
	BelowPercent []int `yaml:"below_percent"` // default [20, 5]
	UsagePercent []int `yaml:"usage_percent"` // default [50, 75, 90]
}

// DefaultAlerts returns the alert defaults of seed 003 ("below 20% and 5% of
// your monthly allocation") and the usage steps 50/75/90%.
func DefaultAlerts() AlertDefaults {
	return AlertDefaults{BelowPercent: []int{20, 5}, UsagePercent: []int{50, 75, 90}}
}

// Default purchase terms: one credit per 1.00, minimum 5.00 (seed 004).
const (
	DefaultCurrency        = "USD"
	DefaultPurchaseMinimum = "5.00"
)

// DefaultCatalog returns the built-in catalog of SPEC "Default catalog", a
// fresh copy on every call.
func DefaultCatalog() *Catalog {
	usd := func(minor int64) credits.Money { return credits.Money{Minor: minor, Currency: DefaultCurrency} }
	cr := credits.FromCredits
	plan := func(name string, monthly int64, rollover int, price int64, runs int64) Plan {
		return Plan{
			Name:           name,
			MonthlyCredits: cr(monthly),
			RolloverMonths: rollover,
			IncludedRuns:   runs,
			Overage:        DefaultOverage(),
			Price:          usd(price).Decimal(),
			PriceMoney:     usd(price),
		}
	}
	enterprise := plan("enterprise", 0, 0, 0, 0)
	enterprise.PerOrg = true
	custom := usd(5000)
	return &Catalog{
		Currency: DefaultCurrency,
		Plans: map[string]Plan{
			"free":         plan("free", 100, 0, 0, 1000),
			"membership":   plan("membership", 20, 0, 2900, 0),
			"standard":     plan("standard", 1000, 0, 1000, 10000),
			"professional": plan("professional", 5000, 3, 4500, 50000),
			"enterprise":   enterprise,
		},
		Packages: map[string]Package{
			"starter": {Name: "starter", Credits: cr(1000), Price: "10.00", PriceMoney: usd(1000)},
			"pro":     {Name: "pro", Credits: cr(5000), Price: "45.00", PriceMoney: usd(4500)},
		},
		Features: map[string]credits.Credits{
			"microservice":           cr(2),
			"market_trend_report":    cr(50),
			"pricing_recommendation": cr(15),
			"restock_prediction":     cr(25),
			"bulk_pricing":           cr(100),
			"competitor_analysis":    cr(75),
			"custom_query":           cr(10),
		},
		Purchase: Purchase{
			CreditsPerUnit:         cr(1),
			Minimum:                DefaultPurchaseMinimum,
			MinimumMoney:           usd(500),
			CustomCreditPrice:      custom.Decimal(),
			CustomCreditPriceMoney: &custom,
		},
		Alerts: DefaultAlerts(),
	}
}

// Plan returns the named plan.
func (c *Catalog) Plan(name string) (Plan, bool) {
	if c == nil {
		return Plan{}, false
	}
	p, ok := c.Plans[name]
	return p, ok
}

// FeatureRate returns the credits one unit of the feature costs.
func (c *Catalog) FeatureRate(feature string) (credits.Credits, bool) {
	if c == nil {
		return 0, false
	}
	r, ok := c.Features[feature]
	return r, ok
}

// CatalogError is one problem with a catalog: the file, the field (a path
// like "plans.free.monthly_credits"; empty for the file as a whole) and the
// reason. Line is the line in the file where known, else 0.
type CatalogError struct {
	File   string
	Field  string
	Reason string
	Line   int
}

// Error reads "catalog FILE: FIELD: REASON", with " (line N)" when the line
// is known.
func (e *CatalogError) Error() string {
	var b strings.Builder
	b.WriteString("catalog")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// nameRE is what plan, package and feature names must match: they appear in
// URLs, CSV columns and database rows.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Limits of the catalog: at most 120 cycles of rollover (ten years), and
// a catalog file of at most 1 MiB.
const (
	MaxRolloverMonths = 120
	maxCatalogBytes   = 1 << 20
)

// problems collects CatalogErrors, at most one per field: a field that could
// not be read is not reported again by validation.
type problems struct {
	file     string
	lines    map[string]int // field path -> line, when read from a file
	reported map[string]bool
	errs     []error
}

func (p *problems) add(field, format string, args ...any) {
	if p.reported == nil {
		p.reported = map[string]bool{}
	}
	if field != "" {
		if p.reported[field] {
			return
		}
		p.reported[field] = true
	}
	p.errs = append(p.errs, &CatalogError{File: p.file, Field: field, Reason: fmt.Sprintf(format, args...), Line: p.line(field)})
}

// line returns the line of field, or of the nearest enclosing field that has
// one (an omitted key is reported at the line of its parent).
func (p *problems) line(field string) int {
	for field != "" {
		if n, ok := p.lines[field]; ok {
			return n
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// Validate reports every problem with c, joined with errors.Join; each is a
// *CatalogError.
func (c *Catalog) Validate() error {
	if c == nil {
		return &CatalogError{Reason: "no catalog"}
	}
	p := &problems{}
	c.validate(p)
	return p.err()
}

func (c *Catalog) validate(p *problems) {
	moneyOK := credits.ValidCurrency(c.Currency)
	if !moneyOK {
		p.add("currency", "%q is not a three-letter upper-case ISO 4217 code", c.Currency)
	}

	if len(c.Plans) == 0 {
		p.add("plans", "at least one plan is required")
	}
	for _, key := range sortedKeys(c.Plans) {
		pl, f := c.Plans[key], "plans."+key
		checkName(p, f, key, pl.Name)
		if pl.MonthlyCredits < 0 {
			p.add(f+".monthly_credits", "must not be negative")
		}
		if pl.RolloverMonths < 0 || pl.RolloverMonths > MaxRolloverMonths {
			p.add(f+".rollover_months", "must be from 0 to %d", MaxRolloverMonths)
		}
		if pl.RolloverCap != nil {
			if *pl.RolloverCap < 0 {
				p.add(f+".rollover_cap", "must not be negative")
			} else if pl.RolloverMonths <= 0 {
				p.add(f+".rollover_cap", "only allowed when rollover_months is more than 0")
			}
		}
		if pl.IncludedRuns < 0 {
			p.add(f+".included_runs", "must not be negative")
		}
		if pl.Overage.Runs <= 0 {
			p.add(f+".overage.runs", "must be positive")
		}
		if pl.Overage.Credits < 0 {
			p.add(f+".overage.credits", "must not be negative")
		}
		if moneyOK {
			checkMoney(p, f+".price", pl.Price, c.Currency, &pl.PriceMoney, false)
		}
	}

	for _, key := range sortedKeys(c.Packages) {
		pk, f := c.Packages[key], "packages."+key
		checkName(p, f, key, pk.Name)
		if pk.Credits <= 0 {
			p.add(f+".credits", "must be positive")
		}
		if moneyOK {
			checkMoney(p, f+".price", pk.Price, c.Currency, &pk.PriceMoney, true)
		}
	}

	for _, key := range sortedKeys(c.Features) {
		f := "features." + key
		checkName(p, f, key, key)
		if c.Features[key] <= 0 {
			p.add(f, "must be positive")
		}
	}

	if c.Purchase.CreditsPerUnit <= 0 {
		p.add("purchase.credits_per_unit", "must be positive")
	}
	if moneyOK {
		checkMoney(p, "purchase.minimum", c.Purchase.Minimum, c.Currency, &c.Purchase.MinimumMoney, false)
		switch {
		case c.Purchase.CustomCreditPrice != "":
			checkMoney(p, "purchase.custom_credit_price", c.Purchase.CustomCreditPrice, c.Currency, c.Purchase.CustomCreditPriceMoney, true)
		case c.Purchase.CustomCreditPriceMoney != nil:
			p.add("purchase.custom_credit_price", "empty, but a parsed price of %s is set", *c.Purchase.CustomCreditPriceMoney)
		}
	}

	checkPercents(p, "alerts.below_percent", c.Alerts.BelowPercent)
	checkPercents(p, "alerts.usage_percent", c.Alerts.UsagePercent)
}

func checkName(p *problems, field, key, name string) {
	if !nameRE.MatchString(key) {
		p.add(field, "name %q must match %s", key, nameRE)
	}
	if name != key {
		p.add(field, "name %q does not match its key %q", name, key)
	}
}

// checkMoney checks that s is an amount in currency, not negative (positive
// when positive is set), and that parsed is what s parses to: a Catalog
// built in code must set both.
func checkMoney(p *problems, field, s, currency string, parsed *credits.Money, positive bool) {
	if s == "" {
		p.add(field, "required")
		return
	}
	m, err := credits.ParseMoney(s, currency)
	switch {
	case errors.Is(err, credits.ErrPrecision):
		p.add(field, "%q has more than %d decimal places for %s", s, credits.MinorDigits(currency), currency)
	case err != nil:
		p.add(field, "%q: %v", s, err)
	case m.Minor < 0:
		p.add(field, "must not be negative")
	case positive && m.Minor == 0:
		p.add(field, "must be positive")
	case parsed == nil:
		p.add(field, "parsed amount missing, want %s", m)
	case *parsed != m:
		p.add(field, "parsed amount %s does not match %s", *parsed, m)
	}
}

func checkPercents(p *problems, field string, ps []int) {
	for i, v := range ps {
		f := fmt.Sprintf("%s[%d]", field, i)
		if v < 1 || v > 100 {
			p.add(f, "%d is not a percent from 1 to 100", v)
		} else if slices.Contains(ps[:i], v) {
			p.add(f, "duplicate %d", v)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
