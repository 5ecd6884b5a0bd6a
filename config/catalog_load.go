package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/creditd/creditd/ledger/credits"
)

// LoadCatalog reads the catalog file at path; "" means the built-in
// DefaultCatalog. The file is YAML with the shape of Catalog; unknown keys
// are refused, omitted optional fields get their defaults, and the result is
// validated. Every problem is a *CatalogError naming the file, the field and
// the reason, all joined with errors.Join.
func LoadCatalog(path string) (*Catalog, error) {
	if path == "" {
		return DefaultCatalog(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	// One byte past the limit, so that ParseCatalog sees a file too large.
	data, err := io.ReadAll(io.LimitReader(f, maxCatalogBytes+1))
	if err != nil {
		return nil, readError(path, err)
	}
	return ParseCatalog(path, data)
}

func readError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is already in the message
	}
	return fmt.Errorf("catalog %s: cannot read: %w", path, err)
}

// ParseCatalog is LoadCatalog for a file already read; name is the file name
// used in error messages.
//
// Reading happens in three steps, so that every problem is reported at once
// with its field path and line: the YAML is parsed into a node tree and its
// shape checked against the catalog's keys (unknown and duplicate keys,
// lists where a mapping belongs); it is decoded strictly (KnownFields) into
// raw values; the raw values are converted into a Catalog, with defaults,
// and validated. Only YAML syntax errors stop it early.
func ParseCatalog(name string, data []byte) (*Catalog, error) {
	p := &problems{file: name, lines: map[string]int{}}
	if len(data) > maxCatalogBytes {
		p.add("", "larger than %d bytes", maxCatalogBytes)
		return nil, p.err()
	}

	var raw rawCatalog
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&root); {
	case errors.Is(err, io.EOF):
		// An empty file: no plans, reported by validation below.
	case err != nil:
		p.add("", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, p.err()
	default:
		if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
			p.add("", "more than one YAML document")
			return nil, p.err()
		}
		checkShape(p, &root, reflect.TypeFor[rawCatalog](), "")
		shapeOK := len(p.errs) == 0
		strict := yaml.NewDecoder(bytes.NewReader(data))
		strict.KnownFields(true)
		if err := strict.Decode(&raw); err != nil {
			// A *yaml.TypeError leaves the rest decoded. When checkShape
			// has reported the problems (with their fields), carry on to
			// report the values' problems too; otherwise this is the
			// backstop for what checkShape missed.
			var te *yaml.TypeError
			if !errors.As(err, &te) || shapeOK {
				p.add("", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
				return nil, p.err()
			}
		}
	}

	c := raw.build(p)
	c.parseMoney()
	c.validate(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// The raw types mirror the file's shape (the yaml tags of Catalog and its
// parts; a test keeps them in step). Every leaf is a scalar holding the text
// as written, so that a bad value is reported with its field path rather
// than aborting the decoder, and so that amounts never pass through a float.
// A nil pointer is a key that was omitted or null.
type (
	rawCatalog struct {
		Currency *scalar                `yaml:"currency"`
		Plans    map[string]*rawPlan    `yaml:"plans"`
		Packages map[string]*rawPackage `yaml:"packages"`
		Features map[string]*scalar     `yaml:"features"`
		Purchase *rawPurchase           `yaml:"purchase"`
		Alerts   *rawAlerts             `yaml:"alerts"`
	}
	rawPlan struct {
		MonthlyCredits *scalar     `yaml:"monthly_credits"`
		RolloverMonths *scalar     `yaml:"rollover_months"`
		RolloverCap    *scalar     `yaml:"rollover_cap"`
		IncludedRuns   *scalar     `yaml:"included_runs"`
		Overage        *rawOverage `yaml:"overage"`
		Price          *scalar     `yaml:"price"`
		PerOrg         *scalar     `yaml:"per_org"`
	}
	rawOverage struct {
		Runs    *scalar `yaml:"runs"`
		Credits *scalar `yaml:"credits"`
	}
	rawPackage struct {
		Credits *scalar `yaml:"credits"`
		Price   *scalar `yaml:"price"`
	}
	rawPurchase struct {
		CreditsPerUnit    *scalar `yaml:"credits_per_unit"`
		Minimum           *scalar `yaml:"minimum"`
		CustomCreditPrice *scalar `yaml:"custom_credit_price"`
	}
	rawAlerts struct {
		BelowPercent []*scalar `yaml:"below_percent"`
		UsagePercent []*scalar `yaml:"usage_percent"`
	}
)

// scalar is one YAML scalar's text, exactly as written ("29.00", not 29).
type scalar struct{ text string }

func (s *scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		// A TypeError lets the decoder go on with the other fields.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: expected a single value", n.Line)}}
	}
	s.text = n.Value
	return nil
}

var scalarType = reflect.TypeFor[scalar]()

// checkShape walks the node tree against the raw type t and reports unknown
// and duplicate keys and values of the wrong kind, each with its field path
// and line. It records the line of every field it sees in p.lines, for the
// messages of later steps.
func checkShape(p *problems, n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // the same as an omitted key
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	field := path
	if field == "" {
		field = "(top level)"
	}
	want := func(kind yaml.Kind, what string) bool {
		if n.Kind == kind {
			return true
		}
		p.lines[field] = n.Line
		p.add(field, "must be %s", what)
		return false
	}
	switch {
	case t == scalarType:
		want(yaml.ScalarNode, "a single value")
	case t.Kind() == reflect.Slice:
		if !want(yaml.SequenceNode, "a list") {
			return
		}
		for i, el := range n.Content {
			f := fmt.Sprintf("%s[%d]", path, i)
			p.lines[f] = el.Line
			checkShape(p, el, t.Elem(), f)
		}
	case t.Kind() == reflect.Map, t.Kind() == reflect.Struct:
		if !want(yaml.MappingNode, "a mapping") {
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f := k.Value
			if path != "" {
				f = path + "." + k.Value
			}
			p.lines[f] = k.Line
			switch {
			case k.Kind != yaml.ScalarNode:
				p.lines[field] = k.Line
				p.add(field, "keys must be plain names")
				continue
			case k.ShortTag() == "!!merge":
				p.add(f, "merge keys are not supported")
				continue
			case seen[k.Value]:
				p.add(f, "duplicate key")
				continue
			}
			seen[k.Value] = true
			if t.Kind() == reflect.Map {
				checkShape(p, v, t.Elem(), f)
			} else if sf, ok := fieldByTag(t, k.Value); ok {
				checkShape(p, v, sf.Type, f)
			} else {
				p.add(f, "unknown key")
			}
		}
	}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// build converts the raw values into a Catalog with defaults filled in,
// reporting values that do not parse. Ranges are left to validate.
func (r *rawCatalog) build(p *problems) *Catalog {
	c := &Catalog{
		Currency: DefaultCurrency,
		Plans:    make(map[string]Plan, len(r.Plans)),
		Packages: make(map[string]Package, len(r.Packages)),
		Features: make(map[string]credits.Credits, len(r.Features)),
		Purchase: Purchase{CreditsPerUnit: credits.FromCredits(1), Minimum: DefaultPurchaseMinimum},
		Alerts:   DefaultAlerts(),
	}
	if r.Currency != nil {
		c.Currency = r.Currency.text
	}

	for _, name := range sortedKeys(r.Plans) {
		rp, f := r.Plans[name], "plans."+name
		if rp == nil {
			rp = &rawPlan{}
		}
		pl := Plan{Name: name, Overage: DefaultOverage()}
		if rp.PerOrg != nil {
			pl.PerOrg = parseBool(p, f+".per_org", rp.PerOrg)
		}
		switch {
		case rp.MonthlyCredits != nil:
			pl.MonthlyCredits = parseCredits(p, f+".monthly_credits", rp.MonthlyCredits)
		case !pl.PerOrg:
			// Zero credits must be written down, not forgotten.
			p.add(f+".monthly_credits", "required; write 0 for none")
		}
		if rp.RolloverMonths != nil {
			pl.RolloverMonths = parseInt(p, f+".rollover_months", rp.RolloverMonths)
		}
		if rp.RolloverCap != nil {
			v := parseCredits(p, f+".rollover_cap", rp.RolloverCap)
			pl.RolloverCap = &v
		}
		if rp.IncludedRuns != nil {
			pl.IncludedRuns = parseInt64(p, f+".included_runs", rp.IncludedRuns)
		}
		if o := rp.Overage; o != nil {
			if o.Runs != nil {
				pl.Overage.Runs = parseInt64(p, f+".overage.runs", o.Runs)
			}
			if o.Credits != nil {
				pl.Overage.Credits = parseCredits(p, f+".overage.credits", o.Credits)
			}
		}
		switch {
		case rp.Price != nil:
			pl.Price = rp.Price.text
		case pl.PerOrg:
			pl.Price = "0" // set per org
		}
		c.Plans[name] = pl
	}

	for _, name := range sortedKeys(r.Packages) {
		rp, f := r.Packages[name], "packages."+name
		if rp == nil {
			rp = &rawPackage{}
		}
		pk := Package{Name: name}
		if rp.Credits != nil {
			pk.Credits = parseCredits(p, f+".credits", rp.Credits)
		} else {
			p.add(f+".credits", "required")
		}
		if rp.Price != nil {
			pk.Price = rp.Price.text
		}
		c.Packages[name] = pk
	}

	for _, name := range sortedKeys(r.Features) {
		s := r.Features[name]
		if s == nil {
			p.add("features."+name, "required: the credits one use costs")
			continue
		}
		c.Features[name] = parseCredits(p, "features."+name, s)
	}

	if rp := r.Purchase; rp != nil {
		if rp.CreditsPerUnit != nil {
			c.Purchase.CreditsPerUnit = parseCredits(p, "purchase.credits_per_unit", rp.CreditsPerUnit)
		}
		if rp.Minimum != nil {
			c.Purchase.Minimum = rp.Minimum.text
		}
		if rp.CustomCreditPrice != nil {
			c.Purchase.CustomCreditPrice = rp.CustomCreditPrice.text
		}
	}

	if ra := r.Alerts; ra != nil {
		// An omitted list keeps its default; an empty one ([]) means none.
		if ra.BelowPercent != nil {
			c.Alerts.BelowPercent = parsePercents(p, "alerts.below_percent", ra.BelowPercent)
		}
		if ra.UsagePercent != nil {
			c.Alerts.UsagePercent = parsePercents(p, "alerts.usage_percent", ra.UsagePercent)
		}
	}
	return c
}

// parseMoney fills the parsed amounts of every price from its string and
// writes the string in its canonical form ("29" becomes "29.00"). A price
// that does not parse is left for validate to report.
func (c *Catalog) parseMoney() {
	parse := func(s *string, m *credits.Money) bool {
		v, err := credits.ParseMoney(*s, c.Currency)
		if err != nil || v.Currency != c.Currency {
			return false
		}
		*m, *s = v, v.Decimal()
		return true
	}
	for name, pl := range c.Plans {
		parse(&pl.Price, &pl.PriceMoney)
		c.Plans[name] = pl
	}
	for name, pk := range c.Packages {
		parse(&pk.Price, &pk.PriceMoney)
		c.Packages[name] = pk
	}
	parse(&c.Purchase.Minimum, &c.Purchase.MinimumMoney)
	if c.Purchase.CustomCreditPrice != "" {
		var m credits.Money
		if parse(&c.Purchase.CustomCreditPrice, &m) {
			c.Purchase.CustomCreditPriceMoney = &m
		}
	}
}

func parseCredits(p *problems, field string, s *scalar) credits.Credits {
	v, err := credits.Parse(s.text)
	if err != nil {
		p.add(field, "%q: %v", s.text, err)
	}
	return v
}

func parseInt64(p *problems, field string, s *scalar) int64 {
	v, err := strconv.ParseInt(s.text, 10, 64)
	if err != nil {
		p.add(field, "%q is not a whole number", s.text)
	}
	return v
}

func parseInt(p *problems, field string, s *scalar) int {
	v, err := strconv.Atoi(s.text)
	if err != nil {
		p.add(field, "%q is not a whole number", s.text)
	}
	return v
}

func parseBool(p *problems, field string, s *scalar) bool {
	switch s.text {
	case "true", "True", "TRUE":
		return true
	case "false", "False", "FALSE":
		return false
	}
	p.add(field, "%q is not true or false", s.text)
	return false
}

func parsePercents(p *problems, field string, ss []*scalar) []int {
	out := make([]int, 0, len(ss))
	for i, s := range ss {
		f := fmt.Sprintf("%s[%d]", field, i)
		if s == nil {
			p.add(f, "must be a percent")
			out = append(out, 0)
			continue
		}
		out = append(out, parseInt(p, f, s))
	}
	return out
}
