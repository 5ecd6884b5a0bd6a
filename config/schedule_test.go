package config_test

import (
	"strings"
	"testing"

	"github.com/creditd/creditd/config"
)

func TestScheduleFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, env string
		want      config.Schedule
		err       string
	}{
		{"default", "", config.DefaultSchedule(), ""},
		{"override", "cycles=*/10 * * * *; holds=@every 2m", config.Schedule{"cycles": "*/10 * * * *", "lots": "*/5 * * * *", "holds": "@every 2m", "alerts": "*/30 * * * *", "invoices": "2 * * * *", "reconcile": "*/15 * * * *"}, ""},
		{"turned off", "holds=", config.Schedule{"cycles": "*/5 * * * *", "lots": "*/5 * * * *", "alerts": "*/30 * * * *", "invoices": "2 * * * *", "reconcile": "*/15 * * * *"}, ""},
		{"reconcile turned off", "reconcile=", config.Schedule{"cycles": "*/5 * * * *", "lots": "*/5 * * * *", "holds": "* * * * *", "alerts": "*/30 * * * *", "invoices": "2 * * * *"}, ""},
		{"unknown job", "statements=0 * * * *", nil, `unknown job "statements"`},
		{"bad spec", "cycles=every five minutes", nil, "cycles:"},
		{"not job=spec", "cycles", nil, "is not job=SPEC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.ScheduleFromEnv(func(k string) string {
				if k == config.EnvSchedule {
					return tt.env
				}
				return ""
			})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), config.EnvSchedule) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, config.EnvSchedule, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("schedule = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("schedule = %v, want %v", got, tt.want)
				}
			}
		})
	}
}
