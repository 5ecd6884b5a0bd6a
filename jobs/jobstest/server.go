package jobstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Server is a private redis-server process for a test that must crash and
// restart Redis, which the shared server may never be made to do. It keeps
// its data in an append-only file synced on every write, so what Redis
// acknowledged survives a SIGKILL, as it would in production with
// `appendfsync always`.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer starts redis-server (found on PATH or in /usr/bin) on a free
// loopback port. The process is killed and its files removed when the test
// ends. The test fails, never skips, when redis-server is not installed.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/redis-server"); statErr != nil {
			t.Fatal("redis-server is not installed: `make test` installs it (apt-get install redis-server)")
		}
		bin = "/usr/bin/redis-server"
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	s.Start()
	t.Cleanup(func() { s.Kill() })
	return s
}

// Opt is the asynq connection to the server.
func (s *Server) Opt() asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))}
}

// Start starts the server process again on the same port and data
// directory, and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	rdb := redis.NewClient(&redis.Options{Addr: s.Opt().Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server did not answer within 10s:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(fmt.Errorf("find a free port: %w", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
