package campaign

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Channels a campaign may use (notify's channel adapters).
var Channels = []string{"sms", "wecom", "miniprogram", "email", "webhook", "outbox"}

// Rates caps the requests a campaign publishes per second, per channel; "*" is the default and 0
// means no cap. A provider's own limit (an SMS account's sends per second) belongs here.
type Rates map[string]int

// DefaultRates are conservative provider limits.
func DefaultRates() Rates {
	return Rates{"sms": 200, "wecom": 100, "miniprogram": 200, "email": 100, "webhook": 500, "outbox": 0, "*": 200}
}

// ParseRates reads `sms=200,wecom=100,*=500` over the defaults.
func ParseRates(v string) (Rates, error) {
	out := DefaultRates()
	if strings.TrimSpace(v) == "" {
		return out, nil
	}
	for _, part := range strings.Split(v, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("rate %q: want channel=requests-per-second (0: unlimited)", part)
		}
		out[name] = n
	}
	return out, nil
}

// For is the rate of a channel.
func (r Rates) For(channel string) int {
	if n, ok := r[channel]; ok {
		return n
	}
	return r["*"]
}

// pacer spaces sends to a rate: wait blocks until n more are allowed.
type pacer struct {
	rate int
	next time.Time
}

func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	delay := time.Until(p.next)
	p.next = p.next.Add(time.Duration(n) * time.Second / time.Duration(p.rate))
	if delay <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
