package main

import (
	"reflect"
	"testing"

	"github.com/hibiken/asynq"
)

func TestWithRedisPool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		opt         asynq.RedisConnOpt
		concurrency int
		want        int // PoolSize afterwards; -1: the option is returned as it was
	}{
		{"default pool grows to the concurrency", asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}, 256, 256 + redisPoolSlack},
		{"a smaller pool grows", asynq.RedisClientOpt{Addr: "127.0.0.1:6379", PoolSize: 10}, 64, 64 + redisPoolSlack},
		{"a larger pool is kept", asynq.RedisClientOpt{Addr: "127.0.0.1:6379", PoolSize: 1000}, 256, 1000},
		{"sentinel", asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:26379"}}, 128, 128 + redisPoolSlack},
		{"cluster is left alone", asynq.RedisClusterClientOpt{Addrs: []string{"127.0.0.1:7000"}}, 256, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := withRedisPool(tc.opt, tc.concurrency)
			var size int
			switch o := got.(type) {
			case asynq.RedisClientOpt:
				if o.Addr != tc.opt.(asynq.RedisClientOpt).Addr {
					t.Errorf("Addr = %q, want it kept", o.Addr)
				}
				size = o.PoolSize
			case asynq.RedisFailoverClientOpt:
				if o.MasterName != "m" {
					t.Errorf("MasterName = %q, want it kept", o.MasterName)
				}
				size = o.PoolSize
			default:
				if !reflect.DeepEqual(got, tc.opt) {
					t.Errorf("got %#v, want %#v unchanged", got, tc.opt)
				}
				size = -1
			}
			if size != tc.want {
				t.Errorf("PoolSize = %d, want %d", size, tc.want)
			}
		})
	}
}
