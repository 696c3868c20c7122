package app

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Where the CPU went during the load. On a machine that eventflow shares
// with Postgres, Redis and the load generator, the throughput is capped by
// the sum of their CPU per event; the report says what each took, so that
// a run shows which of them holds it back.

// clockTicks is the unit of /proc's CPU times (USER_HZ), 100 on Linux.
const clockTicks = 100

// cpuReading is the CPU time, in seconds, that each party had used at one
// moment; NaN where it is unknown.
type cpuReading struct {
	eventflow float64 // process_cpu_seconds_total over every --metrics-url
	self      float64 // this process: the load generator
	redis     float64 // Redis's used_cpu_user + used_cpu_sys
	// machineBusy is every core's non-idle time, from /proc/stat.
	machineBusy float64
}

func readCPU(ctx context.Context, eventflow float64, rdb *redis.Client) cpuReading {
	return cpuReading{eventflow: eventflow, self: selfCPU(), redis: redisCPU(ctx, rdb), machineBusy: machineBusy()}
}

// selfCPU reads this process's user and system time from /proc/self/stat.
func selfCPU() float64 {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return math.NaN()
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first; utime and stime the 12th and 13th.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return math.NaN()
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return math.NaN()
	}
	return (utime + stime) / clockTicks
}

// machineBusy reads the time all cores spent neither idle nor waiting for
// I/O from /proc/stat's first line.
func machineBusy() float64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return math.NaN()
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) < 6 || fields[0] != "cpu" {
		return math.NaN()
	}
	var busy float64
	for i, s := range fields[1:] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return math.NaN()
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		if i != 3 && i != 4 && i < 8 {
			busy += v
		}
	}
	return busy / clockTicks
}

// redisCPU asks Redis for the CPU time it has used (INFO cpu).
func redisCPU(ctx context.Context, rdb *redis.Client) float64 {
	if rdb == nil {
		return math.NaN()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return math.NaN()
	}
	var sum float64
	found := 0
	for line := range strings.SplitSeq(info, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_user" || name == "used_cpu_sys") {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return math.NaN()
			}
			sum += v
			found++
		}
	}
	if found != 2 {
		return math.NaN()
	}
	return sum
}

// cpuReport is the CPU each party used per accepted event during the load,
// in microseconds; null where it is unknown.
type cpuReport struct {
	Cores int `json:"cores"` // of this machine
	// MachineBusyPercent is how busy this machine's cores were, all
	// processes together.
	MachineBusyPercent *float64 `json:"machine_busy_percent"`
	Eventflow          *float64 `json:"eventflow_us_per_event"`
	LoadGenerator      *float64 `json:"load_generator_us_per_event"`
	Redis              *float64 `json:"redis_us_per_event"`
	// Other is the rest of this machine's busy time: Postgres, and
	// anything else running. Only when eventflow runs on this machine (the
	// URL is a loopback address) is its share not part of it.
	Other *float64 `json:"other_us_per_event"`
}

// addCPU reports the readings from the start and the end of the load.
// Redis's share is taken out of Other when it runs on this machine
// (redisLocal).
func (r *benchReport) addCPU(before, after cpuReading, l loadResult, redisLocal bool) {
	if r.Accepted == 0 {
		return
	}
	perEvent := func(a, b float64) *float64 {
		if math.IsNaN(a) || math.IsNaN(b) {
			return nil
		}
		v := (b - a) / float64(r.Accepted) * 1e6
		return &v
	}
	c := &cpuReport{
		Cores:         runtime.NumCPU(),
		Eventflow:     perEvent(before.eventflow, after.eventflow),
		LoadGenerator: perEvent(before.self, after.self),
		Redis:         perEvent(before.redis, after.redis),
	}
	busy := after.machineBusy - before.machineBusy
	if seconds := l.end.Sub(l.start).Seconds(); !math.IsNaN(busy) && seconds > 0 {
		pct := busy / seconds / float64(c.Cores) * 100
		c.MachineBusyPercent = &pct
		other := busy / float64(r.Accepted) * 1e6
		for v, local := range map[*float64]bool{c.LoadGenerator: true, c.Redis: redisLocal, c.Eventflow: isLoopback(r.URL)} {
			if v != nil && local {
				other -= *v
			}
		}
		other = max(other, 0)
		c.Other = &other
	}
	r.CPU = c
}

// isLoopback reports whether rawURL names this machine by a loopback
// address or as localhost.
func isLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	return isLoopbackHost(u.Hostname())
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cpuRedisClient is a client of --redis-url for INFO cpu, nil when the URL
// does not parse, and whether that Redis is on this machine.
func cpuRedisClient(redisURL string) (*redis.Client, bool) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, false
	}
	opts.PoolSize, opts.MaxRetries = 1, -1
	host, _, _ := net.SplitHostPort(opts.Addr)
	return redis.NewClient(opts), isLoopbackHost(host)
}

// write adds the CPU rows to the table; rate is the accepted events per
// second, which makes µs per event cores.
func (c *cpuReport) write(row func(format string, args ...any), rate float64) {
	if c == nil {
		return
	}
	busy := ""
	if c.MachineBusyPercent != nil {
		busy = ", " + strconv.FormatFloat(*c.MachineBusyPercent, 'f', 0, 64) + " % busy"
	}
	row("cpu\t(per event accepted, during the load; this machine: %d cores%s)", c.Cores, busy)
	for _, p := range []struct {
		name string
		v    *float64
	}{
		{"eventflow", c.Eventflow}, {"load generator", c.LoadGenerator}, {"redis", c.Redis},
		{"rest of this machine", c.Other},
	} {
		if p.v != nil {
			row("  %s\t%.0f µs\t%.2f cores", p.name, *p.v, *p.v*rate/1e6)
		}
	}
}
