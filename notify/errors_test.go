package notify

import (
	"strings"
	"testing"
)

func TestCheckMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		id      string
		wantErr string // "" = valid
	}{
		{"Typical", "msg_3f2a9c01-77.b", ""},
		{"MaxLength", strings.Repeat("a", 255), ""},
		{"Empty", "", "message id is empty"},
		{"TooLong", strings.Repeat("a", 256), "256 bytes, at most 255"},
		{"Space", "msg 1", "character ' '"},
		{"AngleBracket", "msg>1", "character '>'"},
		{"NonASCII", "msg_é", "character"},
		{"LeadingDot", ".msg", "must not start or end with '.'"},
		{"TrailingDot", "msg.", "must not start or end with '.'"},
		{"DoubleDot", "msg..1", "hold '..'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkMessageID(tt.id)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkMessageID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("checkMessageID(%q) = %v, want error containing %q", tt.id, err, tt.wantErr)
			}
		})
	}
}
