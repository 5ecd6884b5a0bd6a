package ledger

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidOrgID_MatchesRule: the loop accepts exactly what the rule's
// regular expression accepts, on hand-picked ids and on every byte alone,
// after a letter and before one.
func TestValidOrgID_MatchesRule(t *testing.T) {
	t.Parallel()
	rule := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	ids := []string{"", "a", "acme", "Acme-1", "org_1.eu:prod", "-acme", ".acme", "_a", ":a", "a b", "a/b", "é", "aé",
		"a\x00", strings.Repeat("a", 128), strings.Repeat("a", 129), "0" + strings.Repeat("-", 127)}
	for c := 0; c < 256; c++ {
		ids = append(ids, string([]byte{byte(c)}), string([]byte{'a', byte(c)}), string([]byte{byte(c), 'a'}))
	}
	for _, id := range ids {
		if got, want := validOrgID(id) == nil, rule.MatchString(id); got != want {
			t.Errorf("validOrgID(%q) accepts = %v, the rule says %v", id, got, want)
		}
	}
}
