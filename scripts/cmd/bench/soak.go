package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"time"
)

// runSoak measures the peak first unless a rate is given, then soaks at half of it.
func runSoak(s settings) error {
	rate := s.soakRate
	if rate <= 0 {
		peak, _, err := throughput(s)
		if err != nil {
			return fmt.Errorf("peak before the soak: %w", err)
		}
		fmt.Printf("  %-58s %10.0f orders/s\n", "chain end to end (peak, for the soak rate)", peak)
		rate = peak / 2
	}
	return soak(s, rate, s.soakFor, s.soakEvery)
}

// soakSample is the process's state at one moment of the soak, after a forced GC so the heap
// figure is what is live, not what the collector has not got to yet.
type soakSample struct {
	at         time.Duration
	orders     int64
	heapMB     float64
	goroutines int
	// backlog is the chain's unfinished work: messages its consumers have not yet received or
	// acknowledged. A chain that keeps up holds it level; a growing backlog explains a growing heap.
	backlog uint64
}

// soakTick is how often the paced load posts one batch: rate/10 orders every 100 ms.
const soakTick = 100 * time.Millisecond

// soak offers orders at rate for d through the whole chain and samples heap and goroutines every
// interval; it fails when either grows from the first third of the run to the last.
func soak(s settings, rate float64, d, interval time.Duration) error {
	c, err := startChain(s)
	if err != nil {
		return err
	}
	defer c.stop()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var posted atomic.Int64
	errs := make(chan error, 1)
	go func() { errs <- paceOrders(ctx, c.base, rate, s.soakPeople, &posted) }()
	fmt.Printf("  soak at %.0f orders/s for %s by %d people (heap after GC, goroutines; every %s):\n", rate, d, s.soakPeople, interval)
	start := time.Now()
	var samples []soakSample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		smp := sample(time.Since(start), posted.Load())
		bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
		smp.backlog, err = c.s.Backlog(bctx)
		bcancel()
		if err != nil {
			return err
		}
		samples = append(samples, smp)
		if err := writeHeapProfile(s.soakHeapDir, smp.at); err != nil {
			return err
		}
		fmt.Printf("    %8s %9d orders %8.1f MB heap %6d goroutines %8d backlog\n", smp.at.Round(time.Second), smp.orders, smp.heapMB, smp.goroutines, smp.backlog)
	}
	if err := <-errs; err != nil {
		return err
	}
	quiet, cancelQuiet := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelQuiet()
	if err := c.s.WaitQuiet(quiet); err != nil {
		return fmt.Errorf("after the soak: %w", err)
	}
	return soakVerdict(samples, rate, float64(posted.Load())/d.Seconds())
}

// writeHeapProfile writes heap-<seconds>.pprof into dir ("" writes nothing), right after the
// sample's GC, so that two of them diff into what the run accumulated.
func writeHeapProfile(dir string, at time.Duration) error {
	if dir == "" {
		return nil
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("heap-%05.0f.pprof", at.Seconds())))
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

func sample(at time.Duration, orders int64) soakSample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return soakSample{at: at, orders: orders, heapMB: float64(m.HeapAlloc) / (1 << 20), goroutines: runtime.NumGoroutine()}
}

// paceOrders posts rate/10 orders every 100 ms until ctx ends; fresh order ids every batch.
func paceOrders(ctx context.Context, base string, rate float64, people int, posted *atomic.Int64) error {
	per := max(1, int(rate*soakTick.Seconds()))
	tick := time.NewTicker(soakTick)
	defer tick.Stop()
	for batch := 0; ; batch++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := postBatch(base, workload(per, people, fmt.Sprintf("soak%07d", batch))); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("soak batch %d: %w", batch, err)
		}
		posted.Add(int64(per))
	}
}

// soakVerdict compares the median of the first third of the samples with the median of the last
// third (the first sample, taken while caches fill, is left out). Growth allowed: 25 % or 8 MB of
// heap, whichever is larger, 10 % or 20 goroutines, and a backlog of twice the first third's or
// ten messages per offered order per second, whichever is larger (beyond that the chain is
// falling behind).
func soakVerdict(samples []soakSample, rate, achieved float64) error {
	if len(samples) < 7 {
		return fmt.Errorf("soak: %d samples, want at least 7 (a longer run or a shorter interval)", len(samples))
	}
	steady := samples[1:]
	third := len(steady) / 3
	first, last := steady[:third], steady[len(steady)-third:]
	heap0, heap1 := median(first, func(s soakSample) float64 { return s.heapMB }), median(last, func(s soakSample) float64 { return s.heapMB })
	gor0, gor1 := median(first, func(s soakSample) float64 { return float64(s.goroutines) }), median(last, func(s soakSample) float64 { return float64(s.goroutines) })
	lag0, lag1 := median(first, func(s soakSample) float64 { return float64(s.backlog) }), median(last, func(s soakSample) float64 { return float64(s.backlog) })
	fmt.Printf("  %-58s %10.0f orders/s achieved; heap %.1f → %.1f MB, goroutines %.0f → %.0f, backlog %.0f → %.0f (medians, first → last third)\n",
		"soak", achieved, heap0, heap1, gor0, gor1, lag0, lag1)
	var err error
	if heap1 > max(heap0*1.25, heap0+8) {
		err = errors.Join(err, fmt.Errorf("heap grew from %.1f to %.1f MB", heap0, heap1))
	}
	if gor1 > max(gor0*1.1, gor0+20) {
		err = errors.Join(err, fmt.Errorf("goroutines grew from %.0f to %.0f", gor0, gor1))
	}
	if lag1 > max(2*lag0, 10*rate) {
		err = errors.Join(err, fmt.Errorf("the chain fell behind: backlog grew from %.0f to %.0f messages", lag0, lag1))
	}
	return err
}

func median(samples []soakSample, value func(soakSample) float64) float64 {
	v := make([]float64, len(samples))
	for i, s := range samples {
		v[i] = value(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}
