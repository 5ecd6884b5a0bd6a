// Package jobstest gives tests a Redis database of their own for asynq: a
// database number fixed per test package, flushed before and after use, and
// only ever when it is empty or carries this package's marker key, so tests
// never touch data they did not write.
package jobstest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

const marker = "creditd:test:owner"

// Redis returns asynq options for database db of the server at REDIS_URL
// (set by `make test`); the test fails, never skips, without it.
func Redis(t testing.TB, db int) asynq.RedisClientOpt {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		t.Fatal("REDIS_URL is not set: run the tests with `make test`, which provisions Redis")
	}
	opt, err := asynq.ParseRedisURI(u)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	o, ok := opt.(asynq.RedisClientOpt)
	if !ok {
		t.Fatalf("REDIS_URL: a single Redis server is needed for tests, not %T", opt)
	}
	o.DB = db
	rdb := client(o)
	defer rdb.Close()
	ctx := context.Background()
	n, err := rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	if n > 0 && rdb.Exists(ctx, marker).Val() == 0 {
		t.Fatalf("redis DB %d holds %d keys these tests did not write; refusing to use it", db, n)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, marker, "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rdb := client(o)
		defer rdb.Close()
		rdb.FlushDB(context.Background())
	})
	return o
}

// URL is the redis:// URL of o, for processes a test starts.
func URL(o asynq.RedisClientOpt) string {
	u := url.URL{Scheme: "redis", Host: o.Addr, Path: fmt.Sprintf("/%d", o.DB)}
	if o.Username != "" || o.Password != "" {
		u.User = url.UserPassword(o.Username, o.Password)
	}
	return u.String()
}

func client(o asynq.RedisClientOpt) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB})
}
