package campaign

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browser starts headless Chromium for the test, or skips with one line when it is not installed
// (CI=true makes that a failure: .ci/run installs Debian's chromium).
func browser(t *testing.T) context.Context {
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is required in CI (apt-get install chromium)")
		}
		t.Skip("chromium not installed: skipping the console browser test (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 1400),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// notifyCounterpart answers every notification request as notify would: sent, except every
// seventh member, who opted out, and every other fifth, who never consented to marketing.
func notifyCounterpart(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cons, err := e.js.CreateOrUpdateConsumer(ctx, stream.Events, jetstream.ConsumerConfig{
		Durable: "test-notify", FilterSubject: events.NotificationRequested, AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	n := 0
	cc, err := cons.Consume(func(m jetstream.Msg) {
		req, err := cenats.FromMsg(m.Headers(), m.Data())
		if err != nil {
			_ = m.Term()
			return
		}
		n++
		typ, reason := events.NotificationSent, ""
		switch {
		case n%7 == 0:
			typ, reason = events.NotificationSuppressed, "opted_out"
		case n%5 == 0:
			typ, reason = events.NotificationSuppressed, "no_consent"
		}
		ev := outcome(t, typ, req, reason)
		msg, err := cenats.ToMsg(ev.Type(), ev)
		if err == nil {
			msg.Header.Set(jetstream.MsgIDHeader, ev.ID())
			_, err = e.js.PublishMsg(ctx, msg)
		}
		if err != nil {
			_ = m.Nak()
			return
		}
		_ = m.Ack()
	})
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
}

func screenshot(t *testing.T, ctx context.Context, name string) image.Image {
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	if dir := os.Getenv("CAMPAIGN_SCREENSHOTS"); dir != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), buf, 0o644))
	}
	img, err := png.Decode(bytes.NewReader(buf))
	require.NoError(t, err, "the screenshot is a PNG")
	return img
}

// assertRendered checks a screenshot shows a page: a sensible size, and many colours (text, cards,
// the brand colour), not a blank or single-colour surface.
func assertRendered(t *testing.T, img image.Image) {
	b := img.Bounds()
	assert.GreaterOrEqual(t, b.Dx(), 1000, "screenshot width")
	assert.GreaterOrEqual(t, b.Dy(), 700, "screenshot height")
	colours := map[uint32]bool{}
	brand := 0
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[(r>>11)<<10|(g>>11)<<5|bl>>11] = true
			if r>>8 > 190 && g>>8 < 90 && bl>>8 < 60 {
				brand++
			}
		}
	}
	assert.Greater(t, len(colours), 40, "got %d distinct colours, want a rendered page", len(colours))
	assert.Greater(t, brand, 100, "the brand colour (buttons, the count) is on the page")
}

func TestConsoleCountsPreviewsTriggersAndWatchesADormantCampaign(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t)
	want := e.seedDormant(40)
	e.start()
	notifyCounterpart(t, e)

	poll := func(expr string, within time.Duration) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(within))
	}
	text := func(sel string) string {
		got, err := chromedp.Run(ctx, chromedp.Text(sel))
		require.NoError(t, err, sel)
		return got
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/console/#token="+token),
		chromedp.WaitVisible(`body[data-ready="true"]`),
		poll(`document.getElementById("count").textContent === "40"`, 20*time.Second),
	), "the console shows the dormant segment's count")
	sampleText, preview := text(`#sample`), text(`#preview`)
	assert.Contains(t, preview, "好久不见！山野咖啡为您准备了50元无门槛券")
	assert.Contains(t, preview, "拒收请回复R", "an SMS preview shows the opt-out suffix")
	assert.Regexp(t, `138\*\*\*\*\d{4}`, sampleText, "the sample shows masked phones")
	assert.NotRegexp(t, `1[3-9]\d{9}`, sampleText, "never a phone in clear")
	assertRendered(t, screenshot(t, ctx, "console-before.png"))

	input := func(sel string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`document.querySelector("` + sel + `").dispatchEvent(new Event("input")) || true`)
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(`#template`, "bonus_points"), chromedp.SetValue(`#bonus`, "200"), input("#bonus"),
		poll(`document.getElementById("preview").textContent.includes("额外赠送200积分")`, 10*time.Second),
		chromedp.SetValue(`#template`, "winback_coupon"), chromedp.SetValue(`#bonus`, "0"), input("#template"),
		poll(`document.getElementById("preview").textContent.includes("好久不见")`, 10*time.Second),
	), "the preview follows the template")

	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(`#operator`, "mei@brand.example"),
		chromedp.Click(`#send`), chromedp.WaitVisible(`#confirm-dialog`)))
	assert.Contains(t, text(`#confirm-text`), "40 位会员")
	assert.Contains(t, text(`#confirm-text`), "只发给同意在此渠道接收营销的会员", "the marketer is told before sending")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`#confirm`),
		poll(`document.getElementById("progress-status").dataset.state === "done"`, 40*time.Second),
	), "the page shows the campaign finished")
	require.NoError(t, chromedp.Do(ctx, poll(`(() => { const f = document.getElementById("progress-bar"); return f.offsetWidth > 0 && f.offsetWidth >= f.parentElement.clientWidth - 1 })()`, 5*time.Second)),
		"the progress bar is full")
	assert.Equal(t, []string{"28", "12", "7"}, []string{text(`#p-sent`), text(`#p-suppressed`), text(`#p-noconsent`)},
		"got sent, suppressed, no consent on the page")
	assert.Contains(t, text(`#p-reasons`), "已退订 5")
	assert.Contains(t, text(`#p-reasons`), "7 位会员未同意在此渠道接收营销消息", "the page says why they got nothing")
	assertRendered(t, screenshot(t, ctx, "console-done.png"))

	// A rule built in the console counts too: members whose last order is at least 180 days old
	// (the 40 dormant ones), then only those with points (none).
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(`#builder summary`),
		chromedp.SetValue(`#r-last-order`, "180"), input("#r-last-order"),
		poll(`document.getElementById("segment").value === "__custom" && document.getElementById("count").textContent === "40"`, 10*time.Second),
		chromedp.SetValue(`#r-points`, "1"), input("#r-points"),
		poll(`document.getElementById("count").textContent === "0"`, 10*time.Second),
	), "the count follows the rule builder")
	assert.Len(t, e.requests(), len(want))
	var list struct{ Campaigns []Campaign }
	require.Equal(t, http.StatusOK, e.call("GET", "/v1/campaigns", nil, &list))
	require.Len(t, list.Campaigns, 1)
	assert.Equal(t, []string{"create", "trigger"}, sortedActions(e, list.Campaigns[0].ID), "the console's actions are audited under the marketer's name")
}

func sortedActions(e *env, id string) []string {
	out := e.audit(id)
	slices.Sort(out)
	return out
}
