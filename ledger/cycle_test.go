package ledger_test

import (
	"testing"
	"time"

	"github.com/creditd/creditd/ledger"
)

func TestAnchor_CycleStart(t *testing.T) {
	t.Parallel()
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	ny, berlin := load("America/New_York"), load("Europe/Berlin")
	tests := []struct {
		name   string
		anchor time.Time
		zone   *time.Location
		want   []string // starts of cycles 0, 1, 2, ... in RFC 3339
	}{
		{"31st clamps and returns", time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC), time.UTC, []string{
			"2027-12-31T00:00:00Z", "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z", "2028-05-31T00:00:00Z"}},
		{"30th in February", time.Date(2027, 1, 30, 12, 0, 0, 0, time.UTC), time.UTC, []string{
			"2027-01-30T12:00:00Z", "2027-02-28T12:00:00Z", "2027-03-30T12:00:00Z"}},
		{"1st at midnight", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC, []string{
			"2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"}},
		{"New York across both DST changes", time.Date(2026, 2, 8, 2, 30, 0, 0, ny), ny, []string{
			"2026-02-08T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-04-08T02:30:00-04:00",
			"2026-05-08T02:30:00-04:00", "2026-06-08T02:30:00-04:00", "2026-07-08T02:30:00-04:00",
			"2026-08-08T02:30:00-04:00", "2026-09-08T02:30:00-04:00", "2026-10-08T02:30:00-04:00",
			"2026-11-08T02:30:00-05:00"}},
		{"Berlin on the 1st", time.Date(2026, 3, 1, 0, 0, 0, 0, berlin), berlin, []string{
			"2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00", "2026-05-01T00:00:00+02:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ledger.Anchor{At: tt.anchor, Zone: tt.zone}
			for k, w := range tt.want {
				want, err := time.Parse(time.RFC3339, w)
				if err != nil {
					t.Fatal(err)
				}
				got := a.CycleStart(k)
				if !got.Equal(want) {
					t.Fatalf("cycle %d starts %s, want %s", k, got.Format(time.RFC3339), w)
				}
				// Every instant of the cycle maps back to it.
				for _, probe := range []time.Time{got, got.Add(time.Hour), a.CycleStart(k + 1).Add(-time.Nanosecond)} {
					if c := a.CycleAt(probe); c.Index != k || !c.Start.Equal(got) {
						t.Fatalf("CycleAt(%s) = %s, want cycle %d", probe, c, k)
					}
				}
			}
		})
	}
}
