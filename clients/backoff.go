package clients

import (
	"math/rand/v2"
	"time"
)

// backoff returns the delay before attempt n (0-based): exponential from min,
// capped at max, with "equal jitter" (half fixed, half random) so that many
// clients reconnecting at once spread out.
func backoff(min, max time.Duration, n int) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(half+1)
}
