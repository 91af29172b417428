package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// cost is what this process (functions, broker and store together) spent over a run: CPU time,
// and the bytes its write calls handed to the kernel (store pages and JetStream files), so a
// figure says per order where the ceiling comes from, not only how high it is.
type cost struct {
	cpu     time.Duration
	written int64 // bytes passed to write(2)/pwrite(2): /proc/self/io wchar
	wall    time.Duration
	// messages stored in the events stream and deliveries to the chained functions
	messages, deliveries uint64
}

type costMeter struct {
	began   time.Time
	cpu     time.Duration
	written int64
}

func startCost() costMeter {
	return costMeter{began: time.Now(), cpu: processCPU(), written: bytesWritten()}
}

func (m costMeter) stop() cost {
	return cost{cpu: processCPU() - m.cpu, written: bytesWritten() - m.written, wall: time.Since(m.began)}
}

// perOrder prints the cost of one of n orders and how much of the machine the run kept busy.
func (c cost) perOrder(n int) string {
	return fmt.Sprintf("%.2f ms CPU (%.0f%% of %d cores busy), %.0f KB written, %.1f messages, %.1f deliveries",
		ms(c.cpu/time.Duration(n)), 100*c.cpu.Seconds()/c.wall.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU(),
		float64(c.written)/float64(n)/1024, float64(c.messages)/float64(n), float64(c.deliveries)/float64(n))
}

// brokerCeiling is the orders per second the broker alone would allow at the raw rate (one
// publish, delivery and ack per raw message) with nothing else running: an upper bound for the
// chain whatever the functions and the store cost.
func (c cost) brokerCeiling(n int, raw float64) float64 {
	perOrder := float64(max(c.messages, c.deliveries)) / float64(n)
	if perOrder == 0 {
		return 0
	}
	return raw / perOrder
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bytesWritten reads wchar from /proc/self/io (Linux); 0 where it cannot be read.
func bytesWritten() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("wchar: ")); ok {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		}
	}
	return 0
}
