package middleware

import (
	"crypto/sha256"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/eventflow/eventflow/handlers/problem"
)

// RateLimit admits at most perSecond requests per second per client, with
// bursts of burst, and answers the rest 429 with Retry-After. A client is
// its API key when it sends one (keys are kept hashed), else its remote
// address. Every answer carries the IETF RateLimit-Policy and RateLimit
// headers (draft-ietf-httpapi-ratelimit-headers). onLimited, if set, is
// called for each refused request.
//
// perSecond 0 turns the limit off.
func RateLimit(perSecond float64, burst int, onLimited func()) func(http.Handler) http.Handler {
	if perSecond <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	burst = max(burst, 1)
	var (
		mu       sync.Mutex
		limiters = map[[32]byte]*rate.Limiter{}
	)
	limiter := func(r *http.Request) *rate.Limiter {
		id := sha256.Sum256([]byte(clientID(r)))
		mu.Lock()
		defer mu.Unlock()
		l, ok := limiters[id]
		if !ok {
			if len(limiters) >= maxRateLimitClients {
				// A flood of distinct clients must not grow memory without
				// bound; starting over only forgets who spent their burst.
				clear(limiters)
			}
			l = rate.NewLimiter(rate.Limit(perSecond), burst)
			limiters[id] = l
		}
		return l
	}
	policy := fmt.Sprintf(`"default";q=%d;w=1`, int(math.Ceil(perSecond)))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			l := limiter(r)
			now := time.Now()
			allowed := l.AllowN(now, 1)
			remaining := max(int(l.TokensAt(now)), 0)
			w.Header().Set("RateLimit-Policy", policy)
			if allowed {
				w.Header().Set("RateLimit", fmt.Sprintf(`"default";r=%d;t=1`, remaining))
				next.ServeHTTP(w, r)
				return
			}
			wait := time.Duration(float64(time.Second) / perSecond)
			w.Header().Set("RateLimit", fmt.Sprintf(`"default";r=0;t=%d`, int(math.Ceil(wait.Seconds()))))
			if onLimited != nil {
				onLimited()
			}
			p := problem.New(http.StatusTooManyRequests, fmt.Sprintf("over the limit of %v requests per second for this client; retry after Retry-After", perSecond))
			p.RetryAfter = wait
			problem.Write(w, RequestIDFrom(r.Context()), p)
		})
	}
}

// maxRateLimitClients caps the clients RateLimit remembers at once.
const maxRateLimitClients = 100_000

// clientID is the API key the request presents, or its remote host.
func clientID(r *http.Request) string {
	if k := presentedKey(r); k != "" {
		return "key:" + k
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}
