package credits

import (
	"math"
	"testing"
)

func TestParsePercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Percent
		ok   bool
	}{
		{"20", 2000, true}, {"2.5", 250, true}, {"0.01", 1, true}, {"100", 10000, true}, {"12.50%", 1250, true},
		{"0", 0, false}, {"-5", 0, false}, {"100.01", 0, false}, {"2.555", 0, false}, {"abc", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePercent(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParsePercent(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
			if tt.ok {
				back, err := ParsePercent(got.String())
				if err != nil || back != got {
					t.Fatalf("round trip of %q via %q = %d, %v", tt.in, got.String(), back, err)
				}
			}
		})
	}
}

func TestPercentOfAndReached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		p            Percent
		c            Credits
		of           Credits
		reachedAtOf  bool
		reachedBelow bool
	}{
		{"20% of 1000 credits", 2000, 1_000_000, 200_000, true, false},
		{"20% of 0.004 rounds up", 2000, 4, 1, true, false}, // 0.8 millicredits: 1 is the least not below it
		{"5% of 1 millicredit", 500, 1, 1, true, false},
		{"100% of the maximum", 10000, math.MaxInt64, math.MaxInt64, true, false},
		{"2.5% of 1000 credits", 250, 1_000_000, 25_000, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Of(tt.c); got != tt.of {
				t.Fatalf("%s of %d = %d, want %d", tt.p, tt.c, got, tt.of)
			}
			if got := tt.p.Reached(tt.of, tt.c); got != tt.reachedAtOf {
				t.Fatalf("Reached(%d, %d) = %v, want %v", tt.of, tt.c, got, tt.reachedAtOf)
			}
			if got := tt.p.Reached(tt.of-1, tt.c); got != tt.reachedBelow {
				t.Fatalf("Reached(%d, %d) = %v, want %v", tt.of-1, tt.c, got, tt.reachedBelow)
			}
		})
	}
}
