package ledger

import (
	"fmt"
	"sync"
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
//
// From, when set, is the instant this anchor took effect (a changed anchor
// takes effect at a cycle boundary of the old one): the cycle that starts at
// From is a transition cycle that ends at the anchor's first cycle start
// after From, and from there on cycles follow the anchor. Instants before
// From are not in this anchor's schedule (CycleAt answers for them as if From
// were unset).
type Anchor struct {
	At   time.Time
	Zone *time.Location
	From time.Time
}

// NewAnchor loads the zone by IANA name.
func NewAnchor(at time.Time, zone string) (Anchor, error) {
	loc, err := loadZone(zone)
	if err != nil {
		return Anchor{}, err
	}
	return Anchor{At: at, Zone: loc}, nil
}

// zones memoizes time.LoadLocation, which reads the zone's file on every
// call, while every ledger transaction needs its orgs' zones. Zone data does
// not change while the process runs.
var zones sync.Map // name -> *time.Location

func loadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || name == "Local" {
		return nil, invalid("tz", "unknown time zone %q", name)
	}
	zones.Store(name, loc)
	return loc, nil
}

// CycleStart returns the start of cycle k. Each start is computed from the
// anchor's wall-clock fields directly, never by adding to the previous start,
// so clamping never drifts and a daylight-saving change neither skips nor
// doubles a cycle (wallTime resolves gaps and overlaps).
func (a Anchor) CycleStart(k int) time.Time {
	local := a.At.In(a.Zone)
	y, m, d := local.Date()
	hh, mm, ss := local.Clock()
	first := time.Date(y, m+time.Month(k), 1, 0, 0, 0, 0, time.UTC)
	day := min(d, daysIn(first.Year(), first.Month()))
	return wallTime(first.Year(), first.Month(), day, hh, mm, ss, local.Nanosecond(), a.Zone)
}

// wallTime is the instant at which the wall clock in zone shows the given
// date and time. One that falls in a spring-forward gap moves forward by the
// gap's length (02:30 in a 02:00–03:00 gap is 03:30; midnight in a gap at
// midnight is 01:00), and one in an autumn overlap takes the first of the two
// instants. Cycle starts and the dates of usage reports both resolve local
// times this way.
func wallTime(y int, mo time.Month, d, hh, mm, ss, ns int, zone *time.Location) time.Time {
	t := time.Date(y, mo, d, hh, mm, ss, ns, zone)
	if h, m, _ := t.Clock(); h != hh || m != mm {
		// The wall-clock time does not exist that day (a spring-forward gap).
		// time.Date resolved it to the wall clock before the gap west of UTC
		// (01:30) and after it east of UTC (03:30): move the first past the
		// gap too (the offset at t is the one before the gap only then).
		_, before := t.Zone()
		_, after := t.Add(24 * time.Hour).Zone()
		return t.Add(time.Duration(after-before) * time.Second)
	}
	// In an autumn overlap the wall-clock time occurs twice, and time.Date
	// returns either one (the later east of UTC, the earlier west of it).
	// Take the first: the same wall clock, one offset change earlier.
	_, off := t.Zone()
	if _, prev := t.Add(-24 * time.Hour).Zone(); prev > off {
		if e := t.Add(-time.Duration(prev-off) * time.Second); sameWallClock(e.In(zone), t) {
			t = e.In(zone)
		}
	}
	return t
}

func sameWallClock(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute() &&
		a.Second() == b.Second() && a.Nanosecond() == b.Nanosecond()
}

// CycleAt returns the cycle containing t. From t = From on, the first cycle
// is the transition cycle [From, first start after From), which has the index
// of the regular cycle it cuts short.
func (a Anchor) CycleAt(t time.Time) Cycle {
	la, lt := a.At.In(a.Zone), t.In(a.Zone)
	k := (lt.Year()-la.Year())*12 + int(lt.Month()) - int(la.Month())
	start := a.CycleStart(k)
	for start.After(t) {
		k--
		start = a.CycleStart(k)
	}
	end := a.CycleStart(k + 1)
	for !end.After(t) {
		k++
		start, end = end, a.CycleStart(k+1)
	}
	c := Cycle{Index: k, Start: start, End: end}
	if !a.From.IsZero() && !t.Before(a.From) && c.Start.Before(a.From) {
		c.Start = a.From
	}
	return c
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
