package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Faults counts what the fault loop did.
type Faults struct {
	mu           sync.Mutex
	Kills        map[string]int
	Pauses       map[string]int
	NATSRestarts int
	Errors       []string
}

func (f *Faults) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("kill -9 %v, paused %v, nats-server killed and restarted %d times", f.Kills, f.Pauses, f.NATSRestarts)
}

// Inject kills a random function (restarted after a moment), pauses one past its ack wait, or
// kills and restarts nats-server, every interval until ctx ends.
func (c *Cluster) Inject(ctx context.Context, every time.Duration, seed uint64) *Faults {
	f := &Faults{Kills: map[string]int{}, Pauses: map[string]int{}}
	rng := rand.New(rand.NewPCG(seed, 11))
	for {
		select {
		case <-ctx.Done():
			return f
		case <-time.After(every/2 + time.Duration(rng.Int64N(int64(every)))):
		}
		var err error
		switch r := rng.IntN(10); {
		case r < 6:
			err = c.killAndRestart(rng, f)
		case r < 8:
			err = c.pause(ctx, rng, f)
		default:
			err = c.restartNATS(rng, f)
		}
		if err != nil {
			f.mu.Lock()
			f.Errors = append(f.Errors, err.Error())
			f.mu.Unlock()
		}
	}
}

func (c *Cluster) killAndRestart(rng *rand.Rand, f *Faults) error {
	names := c.Names()
	victim := names[rng.IntN(len(names))]
	c.Procs[victim].Kill()
	f.mu.Lock()
	f.Kills[victim]++
	f.mu.Unlock()
	time.Sleep(time.Duration(100+rng.IntN(1400)) * time.Millisecond) // the fault: how long it stays down
	return c.Restart(victim)
}

// pause freezes a consumer longer than its ack wait, so JetStream redelivers its messages to no
// one (it is the only instance) and it then finishes work whose acks come too late.
func (c *Cluster) pause(ctx context.Context, rng *rand.Rand, f *Faults) error {
	victim := c.Pausable[rng.IntN(len(c.Pausable))]
	c.Procs[victim].Pause()
	f.mu.Lock()
	f.Pauses[victim]++
	f.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-time.After(c.cfg.AckWait + time.Second):
	}
	c.Procs[victim].Resume()
	return nil
}

func (c *Cluster) restartNATS(rng *rand.Rand, f *Faults) error {
	c.NATS.Kill()
	f.mu.Lock()
	f.NATSRestarts++
	f.mu.Unlock()
	time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond) // the fault: how long it stays down
	return c.RestartNATS()
}

// Heal restarts whatever is down and resumes whatever is paused, before the final count.
func (c *Cluster) Heal() error {
	if !c.NATS.Running() {
		if err := c.RestartNATS(); err != nil {
			return err
		}
	}
	for _, name := range c.Names() {
		p := c.Procs[name]
		p.Resume()
		if !p.Running() {
			if err := c.Restart(name); err != nil {
				return err
			}
		}
	}
	return nil
}
