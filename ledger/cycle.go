package ledger

import (
	"fmt"
	"time"
)

// Cycle is one billing period of an org: [Start, End).
type Cycle struct {
	Index int // 0 is the cycle that starts at the org's anchor
	Start time.Time
	End   time.Time
}

// Anchor is an org's billing anchor: the first cycle starts at At, and every
// later cycle starts on the same day of the month and wall-clock time in
// Zone. Days 29–31 fall on the last day of shorter months and return to the
// anchor day afterwards.
type Anchor struct {
	At   time.Time
	Zone *time.Location
}

// NewAnchor loads the zone by IANA name.
func NewAnchor(at time.Time, zone string) (Anchor, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" || zone == "Local" {
		return Anchor{}, invalid("tz", "unknown time zone %q", zone)
	}
	return Anchor{At: at, Zone: loc}, nil
}

// CycleStart returns the start of cycle k. Each start is computed from the
// anchor's wall-clock fields directly, never by adding to the previous start,
// so clamping never drifts and a daylight-saving change neither skips nor
// doubles a cycle: a start that falls in a spring-forward gap is moved by
// time.Date to the instant after the gap, and one in an autumn overlap takes
// the first of the two instants.
func (a Anchor) CycleStart(k int) time.Time {
	local := a.At.In(a.Zone)
	y, m, d := local.Date()
	hh, mm, ss := local.Clock()
	ns := local.Nanosecond()
	first := time.Date(y, m+time.Month(k), 1, 0, 0, 0, 0, time.UTC)
	day := min(d, daysIn(first.Year(), first.Month()))
	t := time.Date(first.Year(), first.Month(), day, hh, mm, ss, ns, a.Zone)
	if h, m, _ := t.Clock(); h != hh || m != mm {
		// The wall-clock time does not exist that day (a spring-forward gap);
		// time.Date resolved it before the gap. Move past the gap instead.
		_, before := t.Zone()
		_, after := t.Add(24 * time.Hour).Zone()
		t = t.Add(time.Duration(after-before) * time.Second)
	}
	return t
}

// CycleAt returns the cycle containing t.
func (a Anchor) CycleAt(t time.Time) Cycle {
	la, lt := a.At.In(a.Zone), t.In(a.Zone)
	k := (lt.Year()-la.Year())*12 + int(lt.Month()) - int(la.Month())
	for a.CycleStart(k).After(t) {
		k--
	}
	for !a.CycleStart(k + 1).After(t) {
		k++
	}
	return Cycle{Index: k, Start: a.CycleStart(k), End: a.CycleStart(k + 1)}
}

func (c Cycle) String() string {
	return fmt.Sprintf("cycle %d [%s, %s)", c.Index, c.Start.Format(time.RFC3339), c.End.Format(time.RFC3339))
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// DefaultAnchor is the start of t's month in zone: an org's first cycle when
// no anchor is given.
func DefaultAnchor(t time.Time, zone *time.Location) time.Time {
	l := t.In(zone)
	return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, zone)
}
