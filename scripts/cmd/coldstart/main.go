// Command coldstart measures each function binary as it deploys: built alone (GOWORK=off, static,
// stripped), started as its own process against a NATS JetStream server with an embedded store on
// a fresh directory, it times process start → /readyz 200 and → the first event handled (an event
// already waiting in JetStream; for ingest, the first webhook answered 202), then reads the idle
// resident memory once it has settled. `make bench` runs it; the bars are the scale-to-zero ones.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/omnimember/omnimember/events"
)

// Bars from issue 7: a scaled-to-zero function must take its first event fast and idle small.
const (
	barFirstEvent = 100 * time.Millisecond
	barIdleRSS    = 30 << 20
)

// target is one function and the event it is cold-started with (empty for ingest: a webhook).
type target struct {
	name  string
	input string
}

var targets = []target{
	{"ingest", ""},
	{"match", events.OrderPaid},
	{"points-award", events.IdentityResolved},
	{"tier-evaluate", events.PointsAwarded},
	{"notify", events.PointsAwarded},
	{"profile", events.IdentityResolved},
}

func main() {
	root := flag.String("root", ".", "repository root (holds functions/)")
	runs := flag.Int("runs", 5, "cold starts per function; the median is printed")
	only := flag.String("only", "", "comma-separated functions to measure (default: all)")
	keep := flag.Bool("keep", false, "keep the work directory (binaries, logs, stores) and print its path")
	flag.Func("env", "extra KEY=VALUE for the functions, repeatable (e.g. GODEBUG=inittrace=1,gctrace=1 with -keep to see why a start is slow)",
		func(kv string) error { extraEnv = append(extraEnv, kv); return nil })
	prebuilt := flag.String("bins", "", "measure the binaries in this directory instead of building them (to compare builds)")
	flag.Parse()
	if err := run(*root, *runs, *only, *prebuilt, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func run(root string, runs int, only, prebuilt string, keep bool) error {
	work, err := os.MkdirTemp("", "omnimember-coldstart-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	chosen := targets
	if only != "" {
		chosen = slices.DeleteFunc(slices.Clone(targets), func(t target) bool { return !slices.Contains(strings.Split(only, ","), t.name) })
	}
	var bins map[string]string
	if prebuilt != "" {
		bins, err = existing(prebuilt, chosen)
	} else {
		bins, err = build(root, filepath.Join(work, "bin"), chosen)
	}
	if err != nil {
		return err
	}
	b, err := startBroker(filepath.Join(work, "nats"))
	if err != nil {
		return err
	}
	defer b.stop()
	fmt.Printf("omnimember cold start — %d CPUs, %s; each function alone against NATS JetStream, embedded store; median of %d\n",
		runtime.NumCPU(), runtime.Version(), runs)
	fmt.Printf("  %-14s %8s %10s %19s %10s %10s  %s\n", "function", "binary", "→ ready", "→ first event", "CPU used", "idle RSS",
		"bars: first event < 100 ms, RSS < 30 MB")
	for _, t := range chosen {
		samples := make([]sample, 0, runs)
		for i := range runs {
			s, err := b.coldStart(t, bins[t.name], filepath.Join(work, fmt.Sprintf("%s-%d", t.name, i)))
			if err != nil {
				return fmt.Errorf("%s run %d: %w", t.name, i+1, err)
			}
			samples = append(samples, s)
		}
		printRow(t, bins[t.name], samples)
	}
	return nil
}

var extraEnv []string

// sample is one cold start.
type sample struct {
	ready, first time.Duration
	cpu          time.Duration // CPU used by the first event
	rss          int64         // bytes
}

func printRow(t target, bin string, samples []sample) {
	ready := median(samples, func(s sample) int64 { return int64(s.ready) })
	first := median(samples, func(s sample) int64 { return int64(s.first) })
	rss := median(samples, func(s sample) int64 { return s.rss })
	cpu := median(samples, func(s sample) int64 { return int64(s.cpu) })
	size := int64(0)
	if fi, err := os.Stat(bin); err == nil {
		size = fi.Size()
	}
	verdict := "ok"
	if time.Duration(first) >= barFirstEvent || rss >= barIdleRSS {
		verdict = "MISSES A BAR"
	}
	what := "event"
	if t.input == "" {
		what = "202"
	}
	fmt.Printf("  %-14s %5.1f MB %7.1f ms %8.1f ms %-7s %7.1f ms %7.1f MB  %s\n", t.name, mb(size), ms(time.Duration(ready)),
		ms(time.Duration(first)), "("+what+")", ms(time.Duration(cpu)), mb(rss), verdict)
}

func median(samples []sample, f func(sample) int64) int64 {
	vs := make([]int64, len(samples))
	for i, s := range samples {
		vs[i] = f(s)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mb(b int64) float64         { return float64(b) / (1 << 20) }
