package config

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/creditd/creditd/ledger/credits"
)

func TestDefaultCatalog_Valid(t *testing.T) {
	t.Parallel()
	if err := DefaultCatalog().Validate(); err != nil {
		t.Fatalf("DefaultCatalog().Validate() = %v", err)
	}
}

// TestDefaultCatalog_SpecNumbers checks the built-in catalog against SPEC
// "Default catalog", number by number.
func TestDefaultCatalog_SpecNumbers(t *testing.T) {
	t.Parallel()
	c := DefaultCatalog()
	if c.Currency != "USD" {
		t.Errorf("Currency = %q, want USD", c.Currency)
	}

	plans := []struct {
		name     string
		monthly  string
		rollover int
		price    int64 // cents
		runs     int64
		perOrg   bool
	}{
		{"free", "100", 0, 0, 1000, false},
		{"membership", "20", 0, 2900, 0, false},
		{"standard", "1000", 0, 1000, 10000, false},
		{"professional", "5000", 3, 4500, 50000, false},
		{"enterprise", "0", 0, 0, 0, true},
	}
	if len(c.Plans) != len(plans) {
		t.Errorf("%d plans, want %d", len(c.Plans), len(plans))
	}
	for _, want := range plans {
		t.Run("plan/"+want.name, func(t *testing.T) {
			t.Parallel()
			p, ok := c.Plan(want.name)
			if !ok {
				t.Fatalf("plan %q missing", want.name)
			}
			if p.Name != want.name {
				t.Errorf("Name = %q", p.Name)
			}
			if p.MonthlyCredits != credits.MustParse(want.monthly) {
				t.Errorf("MonthlyCredits = %s, want %s", p.MonthlyCredits, want.monthly)
			}
			if p.RolloverMonths != want.rollover {
				t.Errorf("RolloverMonths = %d, want %d", p.RolloverMonths, want.rollover)
			}
			if p.RolloverCap != nil {
				t.Errorf("RolloverCap = %s, want none", *p.RolloverCap)
			}
			if m := (credits.Money{Minor: want.price, Currency: "USD"}); p.PriceMoney != m || p.Price != m.Decimal() {
				t.Errorf("price = %q / %v, want %v", p.Price, p.PriceMoney, m)
			}
			if p.IncludedRuns != want.runs {
				t.Errorf("IncludedRuns = %d, want %d", p.IncludedRuns, want.runs)
			}
			if p.PerOrg != want.perOrg {
				t.Errorf("PerOrg = %t, want %t", p.PerOrg, want.perOrg)
			}
			if p.Overage != (Overage{Runs: 100, Credits: credits.MustParse("1")}) {
				t.Errorf("Overage = %+v, want 1 credit per 100 runs", p.Overage)
			}
		})
	}

	features := map[string]string{
		"microservice": "2", "market_trend_report": "50", "pricing_recommendation": "15",
		"restock_prediction": "25", "bulk_pricing": "100", "competitor_analysis": "75", "custom_query": "10",
	}
	if len(c.Features) != len(features) {
		t.Errorf("%d features, want %d", len(c.Features), len(features))
	}
	for f, want := range features {
		if got, ok := c.FeatureRate(f); !ok || got != credits.MustParse(want) {
			t.Errorf("FeatureRate(%q) = %s, %t; want %s", f, got, ok, want)
		}
	}
	if _, ok := c.FeatureRate("nope"); ok {
		t.Error("FeatureRate(nope) found")
	}

	wantPackages := map[string]Package{
		"starter": {Name: "starter", Credits: credits.MustParse("1000"), Price: "10.00", PriceMoney: credits.Money{Minor: 1000, Currency: "USD"}},
		"pro":     {Name: "pro", Credits: credits.MustParse("5000"), Price: "45.00", PriceMoney: credits.Money{Minor: 4500, Currency: "USD"}},
	}
	if !reflect.DeepEqual(c.Packages, wantPackages) {
		t.Errorf("Packages = %+v, want %+v", c.Packages, wantPackages)
	}

	wantPurchase := Purchase{
		CreditsPerUnit:         credits.MustParse("1"),
		Minimum:                "5.00",
		MinimumMoney:           credits.Money{Minor: 500, Currency: "USD"},
		CustomCreditPrice:      "50.00",
		CustomCreditPriceMoney: &credits.Money{Minor: 5000, Currency: "USD"},
	}
	if !reflect.DeepEqual(c.Purchase, wantPurchase) {
		t.Errorf("Purchase = %+v, want %+v", c.Purchase, wantPurchase)
	}

	wantAlerts := AlertDefaults{BelowPercent: []int{20, 5}, UsagePercent: []int{50, 75, 90}}
	if !reflect.DeepEqual(c.Alerts, wantAlerts) {
		t.Errorf("Alerts = %+v, want %+v", c.Alerts, wantAlerts)
	}
}

func TestDefaultCatalog_FreshCopy(t *testing.T) {
	t.Parallel()
	a := DefaultCatalog()
	a.Features["microservice"] = 1
	a.Alerts.BelowPercent[0] = 99
	a.Purchase.CustomCreditPriceMoney.Minor = 1
	b := DefaultCatalog()
	if b.Features["microservice"] != credits.MustParse("2") || b.Alerts.BelowPercent[0] != 20 || b.Purchase.CustomCreditPriceMoney.Minor != 5000 {
		t.Error("changing one DefaultCatalog() changed another")
	}
}

// TestCatalogExample keeps catalog.example.yaml identical to the built-in
// catalog.
func TestCatalogExample(t *testing.T) {
	t.Parallel()
	got, err := LoadCatalog("catalog.example.yaml")
	if err != nil {
		t.Fatalf("LoadCatalog(example) = %v", err)
	}
	if want := DefaultCatalog(); !reflect.DeepEqual(got, want) {
		t.Errorf("catalog.example.yaml differs from DefaultCatalog():\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadCatalog_Empty(t *testing.T) {
	t.Parallel()
	got, err := LoadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, DefaultCatalog()) {
		t.Error(`LoadCatalog("") is not DefaultCatalog()`)
	}
}

func TestLoadCatalog_FileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "missing.yaml")
		_, err := LoadCatalog(path)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "catalog "+path+": ") {
			t.Errorf("err = %v, want not-exist naming %s", err, path)
		}
	})
	t.Run("BadValueNamesPath", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "bad.yaml")
		data := "plans:\n  free:\n    monthly_credits: -1\n    price: \"0\"\n"
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCatalog(path)
		want := "catalog " + path + ": plans.free.monthly_credits: must not be negative (line 3)"
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "large.yaml")
		data := "# " + strings.Repeat("x", maxCatalogBytes) + "\n"
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCatalog(path)
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("err = %v, want too large", err)
		}
	})
}

// minimal is the smallest valid catalog; bad cases change one thing.
const minimal = `
plans:
  free:
    monthly_credits: 100
    price: "0"
`

func TestParseCatalog_Bad(t *testing.T) {
	t.Parallel()
	plan := func(body string) string { return "plans:\n  free:\n" + body }
	tests := []struct {
		name   string
		yaml   string
		field  string // "" for the file as a whole
		reason string
	}{
		{"EmptyFile", "", "plans", "at least one plan is required"},
		{"NoPlans", "currency: USD\n", "plans", "at least one plan is required"},
		{"NullPlans", "plans:\n", "plans", "at least one plan is required"},
		{"EmptyPlans", "plans: {}\n", "plans", "at least one plan is required"},
		{"PlansNotMapping", "plans: [free]\n", "plans", "must be a mapping"},
		{"TopLevelList", "- free\n", "(top level)", "must be a mapping"},
		{"Syntax", "plans:\n  free: [\n", "", "line"},
		{"Tabs", "plans:\n\tfree: {}\n", "", "line 2"},
		{"TwoDocuments", minimal + "---\n" + minimal, "", "more than one YAML document"},
		{"UnknownTopKey", minimal + "plan: {}\n", "plan", "unknown key"},
		{"UnknownPlanKey", plan("    monthly_credits: 1\n    price: \"0\"\n    montly_credits: 2\n"), "plans.free.montly_credits", "unknown key (line 5)"},
		{"UnknownOverageKey", plan("    monthly_credits: 1\n    price: \"0\"\n    overage: {run: 5}\n"), "plans.free.overage.run", "unknown key"},
		{"DuplicateKey", plan("    monthly_credits: 1\n    monthly_credits: 2\n    price: \"0\"\n"), "plans.free.monthly_credits", "duplicate key"},
		{"MergeKey", plan("    <<: {monthly_credits: 1}\n    price: \"0\"\n"), "plans.free.<<", "merge keys are not supported"},
		{"ValueIsMapping", plan("    monthly_credits: {a: 1}\n    price: \"0\"\n"), "plans.free.monthly_credits", "must be a single value"},
		{"BadPlanName", "plans:\n  Free:\n    monthly_credits: 1\n    price: \"0\"\n", "plans.Free", "must match ^[a-z][a-z0-9_]{0,62}$"},
		{"LongPlanName", "plans:\n  a" + strings.Repeat("b", 63) + ":\n    monthly_credits: 1\n    price: \"0\"\n", "plans.a" + strings.Repeat("b", 63), "must match"},
		{"MonthlyNegative", plan("    monthly_credits: -1\n    price: \"0\"\n"), "plans.free.monthly_credits", "must not be negative"},
		{"MonthlyPrecision", plan("    monthly_credits: 1.0005\n    price: \"0\"\n"), "plans.free.monthly_credits", `"1.0005": more than 3 decimal places`},
		{"MonthlyNotNumber", plan("    monthly_credits: lots\n    price: \"0\"\n"), "plans.free.monthly_credits", "not a decimal number"},
		{"MonthlyExponent", plan("    monthly_credits: 1e3\n    price: \"0\"\n"), "plans.free.monthly_credits", "not a decimal number"},
		{"MonthlyMissing", plan("    price: \"0\"\n"), "plans.free.monthly_credits", "required"},
		{"NullPlan", "plans:\n  free:\n", "plans.free.monthly_credits", "required"},
		{"RolloverTooMany", plan("    monthly_credits: 1\n    price: \"0\"\n    rollover_months: 121\n"), "plans.free.rollover_months", "must be from 0 to 120"},
		{"RolloverNegative", plan("    monthly_credits: 1\n    price: \"0\"\n    rollover_months: -1\n"), "plans.free.rollover_months", "must be from 0 to 120"},
		{"RolloverNotInt", plan("    monthly_credits: 1\n    price: \"0\"\n    rollover_months: 1.5\n"), "plans.free.rollover_months", "not a whole number"},
		{"CapWithoutRollover", plan("    monthly_credits: 1\n    price: \"0\"\n    rollover_cap: 10\n"), "plans.free.rollover_cap", "only allowed when rollover_months is more than 0"},
		{"CapNegative", plan("    monthly_credits: 1\n    price: \"0\"\n    rollover_months: 1\n    rollover_cap: -10\n"), "plans.free.rollover_cap", "must not be negative"},
		{"IncludedRunsNegative", plan("    monthly_credits: 1\n    price: \"0\"\n    included_runs: -5\n"), "plans.free.included_runs", "must not be negative"},
		{"IncludedRunsFraction", plan("    monthly_credits: 1\n    price: \"0\"\n    included_runs: 1.5\n"), "plans.free.included_runs", `"1.5" is not a whole number`},
		{"OverageRunsZero", plan("    monthly_credits: 1\n    price: \"0\"\n    overage: {runs: 0}\n"), "plans.free.overage.runs", "must be positive"},
		{"OverageCreditsNegative", plan("    monthly_credits: 1\n    price: \"0\"\n    overage: {credits: -1}\n"), "plans.free.overage.credits", "must not be negative"},
		{"OverageCreditsPrecision", plan("    monthly_credits: 1\n    price: \"0\"\n    overage: {credits: 0.0001}\n"), "plans.free.overage.credits", "more than 3 decimal places"},
		{"PriceNegative", plan("    monthly_credits: 1\n    price: \"-1.00\"\n"), "plans.free.price", "must not be negative"},
		{"PricePrecision", plan("    monthly_credits: 1\n    price: 1.001\n"), "plans.free.price", `"1.001" has more than 2 decimal places for USD`},
		{"PriceNotMoney", plan("    monthly_credits: 1\n    price: free\n"), "plans.free.price", "not a decimal number"},
		{"PriceMissing", plan("    monthly_credits: 1\n"), "plans.free.price", "required"},
		{"PerOrgNotBool", plan("    monthly_credits: 1\n    price: \"0\"\n    per_org: yes\n"), "plans.free.per_org", `"yes" is not true or false`},
		{"PackageCreditsZero", minimal + "packages:\n  starter: {credits: 0, price: \"10.00\"}\n", "packages.starter.credits", "must be positive"},
		{"PackageCreditsMissing", minimal + "packages:\n  starter: {price: \"10.00\"}\n", "packages.starter.credits", "required"},
		{"PackagePriceZero", minimal + "packages:\n  starter: {credits: 10, price: \"0\"}\n", "packages.starter.price", "must be positive"},
		{"PackagePriceMissing", minimal + "packages:\n  starter: {credits: 10}\n", "packages.starter.price", "required"},
		{"PackageBadName", minimal + "packages:\n  Big-Pack: {credits: 10, price: \"1\"}\n", "packages.Big-Pack", "must match"},
		{"FeatureZero", minimal + "features:\n  microservice: 0\n", "features.microservice", "must be positive"},
		{"FeatureNegative", minimal + "features:\n  microservice: -2\n", "features.microservice", "must be positive"},
		{"FeatureNull", minimal + "features:\n  microservice:\n", "features.microservice", "required"},
		{"FeaturePrecision", minimal + "features:\n  microservice: 1.0005\n", "features.microservice", "more than 3 decimal places"},
		{"FeatureBadName", minimal + "features:\n  custom-query: 10\n", "features.custom-query", "must match"},
		{"FeatureDigitFirst", minimal + "features:\n  9lives: 10\n", "features.9lives", "must match"},
		{"CreditsPerUnitZero", minimal + "purchase: {credits_per_unit: 0}\n", "purchase.credits_per_unit", "must be positive"},
		{"MinimumNegative", minimal + "purchase: {minimum: \"-1\"}\n", "purchase.minimum", "must not be negative"},
		{"MinimumEmpty", minimal + "purchase: {minimum: \"\"}\n", "purchase.minimum", "required"},
		{"CustomPriceZero", minimal + "purchase: {custom_credit_price: \"0\"}\n", "purchase.custom_credit_price", "must be positive"},
		{"BelowPercentZero", minimal + "alerts: {below_percent: [0]}\n", "alerts.below_percent[0]", "0 is not a percent from 1 to 100"},
		{"UsagePercentOver", minimal + "alerts: {usage_percent: [50, 101]}\n", "alerts.usage_percent[1]", "101 is not a percent from 1 to 100"},
		{"PercentDuplicate", minimal + "alerts: {usage_percent: [50, 75, 50]}\n", "alerts.usage_percent[2]", "duplicate 50"},
		{"PercentNotInt", minimal + "alerts: {below_percent: [twenty]}\n", "alerts.below_percent[0]", "not a whole number"},
		{"PercentsNotList", minimal + "alerts: {below_percent: 20}\n", "alerts.below_percent", "must be a list"},
		{"CurrencyLower", minimal + "currency: usd\n", "currency", `"usd" is not a three-letter upper-case ISO 4217 code`},
		{"CurrencyLong", minimal + "currency: DOLLAR\n", "currency", "ISO 4217"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseCatalog("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseCatalog = %+v, want an error", c)
			}
			if c != nil {
				t.Errorf("catalog %+v returned with an error", c)
			}
			prefix := "catalog bad.yaml: "
			if tt.field != "" {
				prefix += tt.field + ": "
			}
			var ce *CatalogError
			found := false
			for _, e := range unjoin(err) {
				if errors.As(e, &ce) && ce.File == "bad.yaml" && ce.Field == tt.field &&
					strings.HasPrefix(e.Error(), prefix) && strings.Contains(e.Error()[len(prefix):], tt.reason) {
					found = true
				}
			}
			if !found {
				t.Errorf("error\n%v\nhas no line %q…%q", err, prefix, tt.reason)
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestParseCatalog_AllProblems checks that every problem is reported at
// once, each field once.
func TestParseCatalog_AllProblems(t *testing.T) {
	t.Parallel()
	data := `
currency: USD
plans:
  free:
    monthly_credits: -1
    price: "1.001"
    rollover_months: 200
features:
  microservice: 0
alerts:
  below_percent: [0, 0]
`
	_, err := ParseCatalog("x.yaml", []byte(data))
	want := []string{
		"catalog x.yaml: plans.free.monthly_credits: must not be negative (line 5)",
		"catalog x.yaml: plans.free.rollover_months: must be from 0 to 120 (line 7)",
		`catalog x.yaml: plans.free.price: "1.001" has more than 2 decimal places for USD (line 6)`,
		"catalog x.yaml: features.microservice: must be positive (line 9)",
		"catalog x.yaml: alerts.below_percent[0]: 0 is not a percent from 1 to 100 (line 11)",
		"catalog x.yaml: alerts.below_percent[1]: 0 is not a percent from 1 to 100 (line 11)",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("err =\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

func TestParseCatalog_Defaults(t *testing.T) {
	t.Parallel()
	data := `
plans:
  basic:
    monthly_credits: 10.5
    price: 29
    overage: {credits: 2}
  big:
    monthly_credits: 100
    rollover_months: 2
    rollover_cap: 50
    price: "100"
  custom:
    per_org: true
alerts:
  below_percent: []
`
	c, err := ParseCatalog("d.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := &Catalog{
		Currency: "USD",
		Plans: map[string]Plan{
			"basic": {
				Name: "basic", MonthlyCredits: credits.MustParse("10.5"),
				Overage: Overage{Runs: 100, Credits: credits.MustParse("2")},
				Price:   "29.00", PriceMoney: credits.Money{Minor: 2900, Currency: "USD"},
			},
			"big": {
				Name: "big", MonthlyCredits: credits.MustParse("100"), RolloverMonths: 2, RolloverCap: ptr(credits.MustParse("50")),
				Overage: DefaultOverage(), Price: "100.00", PriceMoney: credits.Money{Minor: 10000, Currency: "USD"},
			},
			"custom": {
				Name: "custom", PerOrg: true, Overage: DefaultOverage(),
				Price: "0.00", PriceMoney: credits.Money{Currency: "USD"},
			},
		},
		Packages: map[string]Package{},
		Features: map[string]credits.Credits{},
		Purchase: Purchase{
			CreditsPerUnit: credits.MustParse("1"),
			Minimum:        "5.00",
			MinimumMoney:   credits.Money{Minor: 500, Currency: "USD"},
		},
		Alerts: AlertDefaults{BelowPercent: []int{}, UsagePercent: []int{50, 75, 90}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestParseCatalog_OtherCurrency(t *testing.T) {
	t.Parallel()
	data := `
currency: ZAR
plans:
  standard: {monthly_credits: 1000, price: "180.00"}
purchase: {credits_per_unit: 0.055, minimum: "90"}
`
	c, err := ParseCatalog("zar.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Plans["standard"].PriceMoney; got != (credits.Money{Minor: 18000, Currency: "ZAR"}) {
		t.Errorf("PriceMoney = %v", got)
	}
	got, err := c.Purchase.CreditsFor(credits.Money{Minor: 10000, Currency: "ZAR"})
	if err != nil || got != credits.MustParse("5.5") {
		t.Errorf("CreditsFor(100.00 ZAR) = %s, %v; want 5.500", got, err)
	}
}

func TestParseCatalog_Anchors(t *testing.T) {
	t.Parallel()
	data := `
plans:
  a: &plan {monthly_credits: 10, price: "1", overage: &ov {runs: 50, credits: 1}}
  b: *plan
  c: {monthly_credits: 20, price: "2", overage: *ov}
`
	c, err := ParseCatalog("anchors.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if c.Plans["b"].MonthlyCredits != credits.MustParse("10") || c.Plans["c"].Overage.Runs != 50 {
		t.Errorf("plans = %+v", c.Plans)
	}
}

// TestRawMirrorsCatalog keeps the raw file types in step with the yaml
// tags of the public types: a field added to one must be added to the other.
func TestRawMirrorsCatalog(t *testing.T) {
	t.Parallel()
	pairs := []struct{ public, raw reflect.Type }{
		{reflect.TypeFor[Catalog](), reflect.TypeFor[rawCatalog]()},
		{reflect.TypeFor[Plan](), reflect.TypeFor[rawPlan]()},
		{reflect.TypeFor[Overage](), reflect.TypeFor[rawOverage]()},
		{reflect.TypeFor[Package](), reflect.TypeFor[rawPackage]()},
		{reflect.TypeFor[Purchase](), reflect.TypeFor[rawPurchase]()},
		{reflect.TypeFor[AlertDefaults](), reflect.TypeFor[rawAlerts]()},
	}
	keys := func(t reflect.Type) []string {
		var out []string
		for i := range t.NumField() {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "-" && name != "" {
				out = append(out, name)
			}
		}
		return out
	}
	for _, p := range pairs {
		if a, b := keys(p.public), keys(p.raw); !reflect.DeepEqual(a, b) {
			t.Errorf("%v keys %v, %v keys %v", p.public, a, p.raw, b)
		}
	}
}

func TestCatalog_ValidateBuiltInCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Catalog)
		want   string
	}{
		{"PriceMoneyMismatch", func(c *Catalog) {
			p := c.Plans["membership"]
			p.PriceMoney.Minor = 1
			c.Plans["membership"] = p
		}, `catalog: plans.membership.price: parsed amount 0.01 USD does not match 29.00 USD`},
		{"NameMismatch", func(c *Catalog) {
			p := c.Plans["free"]
			p.Name = "gratis"
			c.Plans["free"] = p
		}, `catalog: plans.free: name "gratis" does not match its key "free"`},
		{"CustomPriceMoneyMissing", func(c *Catalog) {
			c.Purchase.CustomCreditPriceMoney = nil
		}, `catalog: purchase.custom_credit_price: parsed amount missing, want 50.00 USD`},
		{"CurrencyChangedOnly", func(c *Catalog) {
			c.Currency = "EUR"
		}, `catalog: plans.enterprise.price: parsed amount 0.00 USD does not match 0.00 EUR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultCatalog()
			tt.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestOverage_Cost(t *testing.T) {
	t.Parallel()
	def := DefaultOverage()
	third := Overage{Runs: 3, Credits: credits.MustParse("1")}
	tests := []struct {
		name    string
		o       Overage
		runs    int64
		want    string
		wantErr error
	}{
		{"Zero", def, 0, "0.000", nil},
		{"OneRun", def, 1, "0.010", nil},
		{"Hundred", def, 100, "1.000", nil},
		{"HundredFifty", def, 150, "1.500", nil},
		{"Million", def, 1_000_000, "10000.000", nil},
		{"ThirdOf1", third, 1, "0.333", nil},
		{"ThirdOf2", third, 2, "0.666", nil},
		{"ThirdOf3", third, 3, "1.000", nil},
		{"Free", Overage{Runs: 100}, 1000, "0.000", nil},
		// runs*Credits overflows int64 here, the cost does not.
		{"LargeNoOverflow", def, math.MaxInt64 / 10, "9223372036854775.800", nil},
		{"Overflow", def, math.MaxInt64/10 + 1, "", ErrOverflow},
		{"OverflowSmallRate", Overage{Runs: 1, Credits: credits.MustParse("2")}, math.MaxInt64, "", ErrOverflow},
		{"Overflow128", Overage{Runs: 1, Credits: math.MaxInt64}, math.MaxInt64, "", ErrOverflow},
		{"NegativeRuns", def, -1, "", errAny},
		{"BadRate", Overage{Runs: 0, Credits: 1000}, 1, "", errAny},
		{"NegativeRate", Overage{Runs: 100, Credits: -1}, 1, "", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.o.Cost(tt.runs)
			checkAmount(t, got, err, tt.want, tt.wantErr)
		})
	}
}

// TestOverage_NoDrift checks that charging run by run adds up to the cost of
// all the runs at once.
func TestOverage_NoDrift(t *testing.T) {
	t.Parallel()
	o := Overage{Runs: 7, Credits: credits.MustParse("1")}
	var sum credits.Credits
	for n := int64(1); n <= 1000; n++ {
		after, err := o.Cost(n)
		if err != nil {
			t.Fatal(err)
		}
		before, err := o.Cost(n - 1)
		if err != nil {
			t.Fatal(err)
		}
		sum += after - before
	}
	if total, _ := o.Cost(1000); sum != total {
		t.Errorf("sum of charges %s != cost %s", sum, total)
	}
}

func TestPurchase_CreditsFor(t *testing.T) {
	t.Parallel()
	def := DefaultCatalog().Purchase
	usd := func(minor int64) credits.Money { return credits.Money{Minor: minor, Currency: "USD"} }
	third := Purchase{CreditsPerUnit: credits.MustParse("0.333"), Minimum: "0.00", MinimumMoney: usd(0)}
	jpy := Purchase{CreditsPerUnit: credits.MustParse("0.01"), Minimum: "500", MinimumMoney: credits.Money{Minor: 500, Currency: "JPY"}}
	tests := []struct {
		name    string
		p       Purchase
		m       credits.Money
		want    string
		wantErr error
	}{
		{"Minimum", def, usd(500), "5.000", nil},
		{"BelowMinimum", def, usd(499), "", ErrBelowMinimum},
		{"Cents", def, usd(1234), "12.340", nil},
		{"Large", def, usd(100_000_000), "1000000.000", nil},
		{"OtherCurrency", def, credits.Money{Minor: 1000, Currency: "EUR"}, "", errAny},
		{"RoundsDown", third, usd(1), "0.003", nil},
		{"ZeroWithZeroMinimum", third, usd(0), "", errAny},
		{"Negative", third, usd(-100), "", errAny},
		{"NoDecimalsCurrency", jpy, credits.Money{Minor: 1000, Currency: "JPY"}, "10.000", nil},
		{"Overflow", def, usd(math.MaxInt64), "", ErrOverflow},
		{"UnloadedTerms", Purchase{CreditsPerUnit: 1000}, usd(500), "", errAny},
		{"ZeroRate", Purchase{MinimumMoney: usd(0)}, usd(500), "", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.p.CreditsFor(tt.m)
			checkAmount(t, got, err, tt.want, tt.wantErr)
		})
	}
}

// errAny in a test table means "any error".
var errAny = errors.New("any error")

func checkAmount(t *testing.T, got credits.Credits, err error, want string, wantErr error) {
	t.Helper()
	switch {
	case wantErr == nil && err != nil:
		t.Fatalf("unexpected error %v", err)
	case wantErr == nil && got != credits.MustParse(want):
		t.Errorf("got %s, want %s", got, want)
	case wantErr == errAny && err == nil, wantErr != nil && wantErr != errAny && !errors.Is(err, wantErr):
		t.Errorf("got %s, %v; want error %v", got, err, wantErr)
	}
}

func ptr[T any](v T) *T { return &v }
