// Package retry computes when a failed attempt is tried again: the
// subscription's delay plus jitter, so that the retries of a burst do not
// come back as a burst, and a receiver's Retry-After when it asks for more.
package retry

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps how long a receiver's Retry-After can push an attempt
// back.
const MaxRetryAfter = time.Hour

// JitterFraction is the most jitter added to a delay, as a fraction of it.
const JitterFraction = 0.10

// Delay is base plus a random jitter of up to 10% of it.
func Delay(base time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	return base + time.Duration(rand.Int64N(int64(float64(base)*JitterFraction)+1))
}

// Next returns how long to wait before the next attempt after a failed one:
// delay (already jittered), or the receiver's Retry-After when it answered
// 429 or 503 with one, kept within [delay, max(delay, 1 h)].
func Next(delay time.Duration, status int, retryAfter string, now time.Time) time.Duration {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return delay
	}
	asked, ok := ParseRetryAfter(retryAfter, now)
	if !ok {
		return delay
	}
	return max(delay, min(asked, MaxRetryAfter))
}

// ParseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}
