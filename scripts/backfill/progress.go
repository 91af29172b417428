package backfill

import (
	"fmt"
	"strings"
	"time"
)

// progress draws one line: a bar by bytes read, rows, rate, refused and the time left.
func (r *importRun) progress(final bool) {
	if r.opts.Progress == nil {
		return
	}
	done := 1.0
	if r.size > 0 {
		done = min(1, float64(r.read.n)/float64(r.size))
	}
	elapsed := time.Since(r.start)
	rate := float64(r.res.Rows) / elapsed.Seconds()
	left := "--"
	if done > 0 && !final {
		left = (time.Duration(float64(elapsed)/done) - elapsed).Round(time.Second).String()
	}
	const width = 30
	bar := strings.Repeat("=", int(done*width))
	if len(bar) < width {
		bar += ">" + strings.Repeat(" ", width-len(bar)-1)
	}
	end := "\r"
	if final {
		end = "\n"
	}
	fmt.Fprintf(r.opts.Progress, "[%s] %3.0f%%  %d rows  %.0f rows/s  %d refused  %s left   %s",
		bar, 100*done, r.res.Resumed+r.res.Rows, rate, r.res.Refused, left, end)
}
