package ledger_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/ledgertest"
)

func TestConfigureSessions(t *testing.T) {
	t.Parallel()
	base := ledgertest.NewURL(t)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	for _, tc := range []struct {
		name, url, want string
	}{
		{"off by default", base, "off"},
		{"the URL wins", base + sep + "jit=on", "on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			ledger.ConfigureSessions(cfg)
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var got string
			if err := pool.QueryRow(context.Background(), "SHOW jit").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("jit = %s, want %s", got, tc.want)
			}
		})
	}
}
