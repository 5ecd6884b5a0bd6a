package ledger

import "github.com/jackc/pgx/v5/pgxpool"

// ConfigureSessions sets what every connection of a pool the ledger runs on
// should have. JIT compilation is turned off: the ledger's statements are
// index lookups over a page of orgs whose estimated cost still passes
// jit_above_cost as tables grow, and compiling one costs Postgres hundreds
// of milliseconds, far more than running it (measured: a month boundary of
// 10,000 orgs through the queue at 981 orgs/s with JIT, 1,950 without, in
// the same database). A jit setting in DATABASE_URL (?jit=on) wins.
func ConfigureSessions(cfg *pgxpool.Config) {
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
}
