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

// TestAnchor_Boundaries is the table of anchors × months × zones: the exact
// cycle starts, written out by hand (RFC 3339 with the zone's offset), not
// computed by the code under test. Gaps (spring forward) move the start past
// the gap; overlaps (fall back) take the first of the two instants.
func TestAnchor_Boundaries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		zone   string
		anchor string   // cycle 0's start
		want   []string // starts of cycles 0, 1, 2, ...
	}{
		{"UTC 31st from January 2027 through leap February 2028", "UTC", "2027-01-31T00:00:00Z", []string{
			"2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z", "2027-04-30T00:00:00Z",
			"2027-05-31T00:00:00Z", "2027-06-30T00:00:00Z", "2027-07-31T00:00:00Z", "2027-08-31T00:00:00Z",
			"2027-09-30T00:00:00Z", "2027-10-31T00:00:00Z", "2027-11-30T00:00:00Z", "2027-12-31T00:00:00Z",
			"2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z"}},
		{"UTC 30th at noon through leap February 2028", "UTC", "2027-11-30T12:00:00Z", []string{
			"2027-11-30T12:00:00Z", "2027-12-30T12:00:00Z", "2028-01-30T12:00:00Z", "2028-02-29T12:00:00Z",
			"2028-03-30T12:00:00Z", "2028-04-30T12:00:00Z"}},
		{"UTC 30th in a common February", "UTC", "2027-01-30T00:00:00Z", []string{
			"2027-01-30T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-30T00:00:00Z"}},
		{"UTC 29th in a common and a leap February", "UTC", "2027-01-29T08:00:00Z", []string{
			"2027-01-29T08:00:00Z", "2027-02-28T08:00:00Z", "2027-03-29T08:00:00Z", "2027-04-29T08:00:00Z",
			"2027-05-29T08:00:00Z", "2027-06-29T08:00:00Z", "2027-07-29T08:00:00Z", "2027-08-29T08:00:00Z",
			"2027-09-29T08:00:00Z", "2027-10-29T08:00:00Z", "2027-11-29T08:00:00Z", "2027-12-29T08:00:00Z",
			"2028-01-29T08:00:00Z", "2028-02-29T08:00:00Z", "2028-03-29T08:00:00Z"}},
		{"UTC 1st at midnight across a year end", "UTC", "2027-11-01T00:00:00Z", []string{
			"2027-11-01T00:00:00Z", "2027-12-01T00:00:00Z", "2028-01-01T00:00:00Z", "2028-02-01T00:00:00Z",
			"2028-03-01T00:00:00Z"}},
		{"UTC 15th with seconds", "UTC", "2026-05-15T12:34:56Z", []string{
			"2026-05-15T12:34:56Z", "2026-06-15T12:34:56Z", "2026-07-15T12:34:56Z"}},
		{"New York 8th at 02:30: spring gap on 8 March 2026, back to EST on 1 November", "America/New_York", "2026-02-08T02:30:00-05:00", []string{
			"2026-02-08T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-04-08T02:30:00-04:00",
			"2026-05-08T02:30:00-04:00", "2026-06-08T02:30:00-04:00", "2026-07-08T02:30:00-04:00",
			"2026-08-08T02:30:00-04:00", "2026-09-08T02:30:00-04:00", "2026-10-08T02:30:00-04:00",
			"2026-11-08T02:30:00-05:00", "2026-12-08T02:30:00-05:00"}},
		{"New York 1st at 01:30: the 1 November 2026 overlap takes EDT", "America/New_York", "2026-09-01T01:30:00-04:00", []string{
			"2026-09-01T01:30:00-04:00", "2026-10-01T01:30:00-04:00", "2026-11-01T01:30:00-04:00",
			"2026-12-01T01:30:00-05:00", "2027-01-01T01:30:00-05:00", "2027-02-01T01:30:00-05:00",
			"2027-03-01T01:30:00-05:00", "2027-04-01T01:30:00-04:00"}},
		{"New York 31st at midnight through the year", "America/New_York", "2026-01-31T00:00:00-05:00", []string{
			"2026-01-31T00:00:00-05:00", "2026-02-28T00:00:00-05:00", "2026-03-31T00:00:00-04:00",
			"2026-04-30T00:00:00-04:00", "2026-05-31T00:00:00-04:00", "2026-06-30T00:00:00-04:00",
			"2026-07-31T00:00:00-04:00", "2026-08-31T00:00:00-04:00", "2026-09-30T00:00:00-04:00",
			"2026-10-31T00:00:00-04:00", "2026-11-30T00:00:00-05:00", "2026-12-31T00:00:00-05:00"}},
		{"Berlin 29th at 02:30: spring gap on 29 March 2026, CET again after 25 October", "Europe/Berlin", "2026-01-29T02:30:00+01:00", []string{
			"2026-01-29T02:30:00+01:00", "2026-02-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00",
			"2026-04-29T02:30:00+02:00", "2026-05-29T02:30:00+02:00", "2026-06-29T02:30:00+02:00",
			"2026-07-29T02:30:00+02:00", "2026-08-29T02:30:00+02:00", "2026-09-29T02:30:00+02:00",
			"2026-10-29T02:30:00+01:00", "2026-11-29T02:30:00+01:00", "2026-12-29T02:30:00+01:00"}},
		{"Berlin 25th at 02:30: the 25 October 2026 overlap takes CEST", "Europe/Berlin", "2026-08-25T02:30:00+02:00", []string{
			"2026-08-25T02:30:00+02:00", "2026-09-25T02:30:00+02:00", "2026-10-25T02:30:00+02:00",
			"2026-11-25T02:30:00+01:00", "2026-12-25T02:30:00+01:00", "2027-01-25T02:30:00+01:00",
			"2027-02-25T02:30:00+01:00", "2027-03-25T02:30:00+01:00", "2027-04-25T02:30:00+02:00"}},
		{"Berlin 1st at midnight", "Europe/Berlin", "2026-03-01T00:00:00+01:00", []string{
			"2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00", "2026-05-01T00:00:00+02:00"}},
		{"Auckland 5th at 02:30: the 5 April 2026 overlap takes NZDT", "Pacific/Auckland", "2026-03-05T02:30:00+13:00", []string{
			"2026-03-05T02:30:00+13:00", "2026-04-05T02:30:00+13:00", "2026-05-05T02:30:00+12:00",
			"2026-06-05T02:30:00+12:00"}},
		{"Auckland 27th at 02:30: spring gap on 27 September 2026", "Pacific/Auckland", "2026-08-27T02:30:00+12:00", []string{
			"2026-08-27T02:30:00+12:00", "2026-09-27T03:30:00+13:00", "2026-10-27T02:30:00+13:00",
			"2026-11-27T02:30:00+13:00"}},
		{"Auckland 31st at midnight through leap February 2028", "Pacific/Auckland", "2027-12-31T00:00:00+13:00", []string{
			"2027-12-31T00:00:00+13:00", "2028-01-31T00:00:00+13:00", "2028-02-29T00:00:00+13:00",
			"2028-03-31T00:00:00+13:00", "2028-04-30T00:00:00+12:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := ledger.NewAnchor(mustTime(t, tt.anchor), tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range tt.want {
				want := mustTime(t, w)
				got := a.CycleStart(k)
				if !got.Equal(want) {
					t.Fatalf("cycle %d starts %s, want %s", k, got.Format(time.RFC3339), w)
				}
				end := a.CycleStart(k + 1)
				if days := end.Sub(got).Hours() / 24; days < 27.9 || days > 31.1 {
					t.Fatalf("cycle %d is %.2f days long", k, days)
				}
				for _, probe := range []time.Time{got, got.Add(time.Nanosecond), end.Add(-time.Nanosecond)} {
					if c := a.CycleAt(probe); c.Index != k || !c.Start.Equal(got) || !c.End.Equal(end) {
						t.Fatalf("CycleAt(%s) = %s, want cycle %d", probe.Format(time.RFC3339Nano), c, k)
					}
				}
			}
		})
	}
}

// TestAnchor_From: an anchor that took effect at From (a changed anchor)
// starts with a transition cycle from From to its first start after From.
func TestAnchor_From(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time { return mustTime(t, s) }
	tests := []struct {
		name       string
		anchor     string
		zone       string
		from       string
		at         string
		start, end string
	}{
		{"transition cycle from From", "2026-01-15T00:00:00Z", "UTC", "2026-04-01T00:00:00Z", "2026-04-01T00:00:00Z",
			"2026-04-01T00:00:00Z", "2026-04-15T00:00:00Z"},
		{"inside the transition cycle", "2026-01-15T00:00:00Z", "UTC", "2026-04-01T00:00:00Z", "2026-04-14T23:59:59Z",
			"2026-04-01T00:00:00Z", "2026-04-15T00:00:00Z"},
		{"regular cycles after it", "2026-01-15T00:00:00Z", "UTC", "2026-04-01T00:00:00Z", "2026-04-15T00:00:00Z",
			"2026-04-15T00:00:00Z", "2026-05-15T00:00:00Z"},
		{"From on a start of the new anchor: no transition", "2026-01-15T00:00:00Z", "UTC", "2026-04-15T00:00:00Z",
			"2026-04-20T00:00:00Z", "2026-04-15T00:00:00Z", "2026-05-15T00:00:00Z"},
		{"before From the schedule is the plain anchor's", "2026-01-15T00:00:00Z", "UTC", "2026-04-01T00:00:00Z",
			"2026-03-20T00:00:00Z", "2026-03-15T00:00:00Z", "2026-04-15T00:00:00Z"},
		{"a new zone: the 1st in Berlin from the 1st in UTC", "2026-01-01T00:00:00+01:00", "Europe/Berlin",
			"2026-05-01T00:00:00Z", "2026-05-01T00:00:00Z", "2026-05-01T00:00:00Z", "2026-05-31T22:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := ledger.NewAnchor(utc(tt.anchor), tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			a.From = utc(tt.from)
			c := a.CycleAt(utc(tt.at))
			if !c.Start.Equal(utc(tt.start)) || !c.End.Equal(utc(tt.end)) {
				t.Fatalf("CycleAt(%s) = %s, want [%s, %s)", tt.at, c, tt.start, tt.end)
			}
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
