//go:build chaos

package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"
)

// The outage scenarios crash and restart servers, so they run their own
// Redis and Postgres, on free ports, rather than the machine's, which other
// tests use at the same time. The test's end stops and removes them.

// redisServer is a redis-server of the test's own, with its append-only
// file in a temporary directory.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skipf("redis-server not installed: %v", err)
	}
	r := &redisServer{t: t, port: freePort(t), dir: t.TempDir(), log: &syncBuffer{}}
	r.start()
	t.Cleanup(func() {
		if r.running() {
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// url is the server's redis:// URL.
func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start starts the server on its port and directory, where it replays the
// append-only file of the previous run, and waits until it answers PING.
func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--maxmemory-policy", "noeviction")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	r.done = done
	go func() { _ = r.cmd.Wait(); close(done) }()
	opts, _ := goredis.ParseURL(r.url())
	client := goredis.NewClient(opts)
	defer client.Close()
	eventually(r.t, 30*time.Second, "redis-server answers PING:\n"+r.log.String(), func() bool {
		return client.Ping(context.Background()).Err() == nil
	})
}

func (r *redisServer) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// crash kills the server with SIGKILL: it keeps only what its append-only
// file holds.
func (r *redisServer) crash() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatalf("kill redis-server: %v", err)
	}
	<-r.done
}

// postgresServer is a Postgres cluster of the test's own. initdb and the
// server refuse to run as root, so they run as the postgres user, in a
// directory it owns.
type postgresServer struct {
	t    *testing.T
	bin  string // the directory of initdb and pg_ctl
	dir  string // the data directory, which also holds the socket and the log
	port int
	run  func(name string, args ...string) *exec.Cmd
}

func startPostgresServer(t *testing.T) *postgresServer {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("no /usr/lib/postgresql/*/bin/pg_ctl")
	}
	p := &postgresServer{t: t, bin: filepath.Dir(bins[len(bins)-1]), port: freePort(t)}
	p.run = exec.Command
	dir, err := os.MkdirTemp("", "eventflow-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.run = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	if out, err := p.run(filepath.Join(p.bin, "initdb"), "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start()
	t.Cleanup(func() { _ = p.pgCtl("stop", "-m", "immediate").Run() })
	return p
}

// url is the URL of database name on the server.
func (p *postgresServer) url(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, name)
}

func (p *postgresServer) pgCtl(args ...string) *exec.Cmd {
	return p.run(filepath.Join(p.bin, "pg_ctl"), append([]string{"-D", p.dir}, args...)...)
}

// start starts the server and waits until it takes connections; after a
// crash it first recovers from its write-ahead log.
func (p *postgresServer) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", p.port, p.dir)
	if out, err := p.pgCtl("-o", opts, "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	db, err := sqlx.Open("postgres", p.url("postgres"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer db.Close()
	eventually(p.t, 30*time.Second, "postgres takes connections", func() bool { return db.Ping() == nil })
}

// crash stops the server the way a crash would: immediate mode, no
// checkpoint, connections cut; the next start replays the log.
func (p *postgresServer) crash() {
	p.t.Helper()
	if out, err := p.pgCtl("stop", "-m", "immediate", "-w").CombinedOutput(); err != nil {
		p.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}
