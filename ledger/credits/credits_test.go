package credits

import (
	"errors"
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Credits
		wantErr error
	}{
		{"12", 12000, nil},
		{"12.345", 12345, nil},
		{"-3.250", -3250, nil},
		{"+1.5", 1500, nil},
		{"0.001", 1, nil},
		{".5", 500, nil},
		{"1.2500", 1250, nil},
		{"0", 0, nil},
		{"9223372036854775.807", math.MaxInt64, nil},
		{"-9223372036854775.808", math.MinInt64, nil},
		{"9223372036854775.808", 0, ErrRange},
		{"99999999999999999999", 0, ErrRange},
		{"1.0001", 0, ErrPrecision},
		{"", 0, ErrSyntax},
		{"-", 0, ErrSyntax},
		{"1.", 0, ErrSyntax},
		{"1e3", 0, ErrSyntax},
		{"1,000", 0, ErrSyntax},
		{" 1", 0, ErrSyntax},
		{"abc", 0, ErrSyntax},
		{"1.2.3", 0, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Credits
		want string
	}{
		{12345, "12.345"},
		{-500, "-0.500"},
		{0, "0.000"},
		{1, "0.001"},
		{math.MinInt64, "-9223372036854775.808"},
		{math.MaxInt64, "9223372036854775.807"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.in.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			back, err := Parse(tt.want)
			if err != nil || back != tt.in {
				t.Fatalf("round trip %q = %d, %v", tt.want, back, err)
			}
		})
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"1", "-0.001", "12.345", "9223372036854775.807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(c.String())
		if err != nil || back != c {
			t.Fatalf("Parse(%q)=%d, String=%q, back=%d err=%v", s, c, c.String(), back, err)
		}
	})
}

func TestAddOverflow(t *testing.T) {
	t.Parallel()
	if _, ok := Credits(math.MaxInt64).Add(1); ok {
		t.Fatal("MaxInt64+1 did not report overflow")
	}
	if s, ok := Credits(5).Add(-7); !ok || s != -2 {
		t.Fatalf("5-7 = %d, %v", s, ok)
	}
	if _, ok := Credits(math.MaxInt64 / 2).MulInt(3); ok {
		t.Fatal("MulInt did not report overflow")
	}
}

func TestParseMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, cur string
		want    int64
		str     string
		wantErr bool
	}{
		{"29.00", "usd", 2900, "29.00 USD", false},
		{"5", "ZAR", 500, "5.00 ZAR", false},
		{"100", "JPY", 100, "100 JPY", false},
		{"1.005", "USD", 0, "", true},
		{"1", "US", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in+tt.cur, func(t *testing.T) {
			m, err := ParseMoney(tt.in, tt.cur)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (m.Minor != tt.want || m.String() != tt.str) {
				t.Fatalf("got %d %q", m.Minor, m.String())
			}
		})
	}
}
