package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs/jobstest"
)

// uiRedisDB is the Redis database of the operators' UI case.
const uiRedisDB = 15

// testOperatorsUI runs `creditd all`, records three usage events through the
// queue, and opens /monitor/ in a real headless Chromium. The browser meets
// the basic-auth challenge and logs in with the operator token, as a person
// would at the prompt; the dashboard must then show the usage queue with its
// three processed tasks. A screenshot is saved in the test's temp dir (and in
// $CREDITD_UI_SCREENSHOT_DIR when set, to look at it afterwards).
func testOperatorsUI(t *testing.T, c *cli) {
	browser := jobstest.Browser(t, "the operators' UI", 1400, 900)
	const token = "ui-test-operator-token"
	redisURL := jobstest.URL(jobstest.Redis(t, uiRedisDB))
	c.env = append(c.env, config.EnvRedisURL+"="+redisURL, config.EnvAPIToken+"="+token, config.EnvHTTPAddr+"=127.0.0.1:0")
	base, _ := startServing(t, c.bin, c.env, "all", `"creditd all stopped"`)

	c.ok("org", "create", "ui", "--plan", "standard")
	c.ok("grant", "ui", "100", "--source", "purchase", "--key", "seed")
	for _, ev := range []string{"e1", "e2", "e3"} {
		c.ok("usage", "ui", "1.5", "--event", ev, "--wait")
	}

	ctx, cancelTimeout := context.WithTimeout(browser, 90*time.Second)
	defer cancelTimeout()

	// Answer the server's basic-auth challenge the way a person answers the
	// browser's prompt; every other request goes through untouched.
	var challenged atomic.Bool
	authRequired := chromedp.Events(ctx, fetch.AuthRequired)
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	go func() {
		for ev, err := range authRequired {
			if err != nil {
				return
			}
			challenged.Store(true)
			_, _ = chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
				AuthChallengeResponse: &fetch.AuthChallengeResponse{
					Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: "operator", Password: token}})
		}
	}()
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	handleAuth := true
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &handleAuth}); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/monitor/")); err != nil {
		t.Fatalf("open /monitor/: %v", err)
	}
	// The queues table: the usage row's "Processed" cell, found by its header.
	processed, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
			const rows = Array.from(document.querySelectorAll('tr'));
			const head = rows.find(r => Array.from(r.cells).some(c => c.innerText.trim() === 'Processed'));
			const row = rows.find(r => r.cells.length > 1 && r.cells[0].innerText.trim() === 'usage');
			if (!head || !row) return '';
			const i = Array.from(head.cells).findIndex(c => c.innerText.trim() === 'Processed');
			return row.cells[i].innerText.trim();
		})()`, chromedp.WithPollingTimeout(60*time.Second)))
	shot, shotErr := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if shotErr == nil {
		jobstest.SaveScreenshot(t, "monitor.png", shot)
	}
	if err != nil {
		t.Fatalf("the dashboard did not show the usage queue: %v", err)
	}
	if !challenged.Load() {
		t.Error("the browser was never asked to log in: /monitor/ is not behind auth")
	}
	if processed != "3" {
		t.Fatalf("the usage queue shows %q processed tasks, want 3", processed)
	}
}
