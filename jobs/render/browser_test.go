package render_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/jobs/render"
)

// TestInvoiceHTML_Chromium opens the sample invoice in headless Chromium,
// served by a local HTTP server: the page must load without console errors
// or exceptions, request nothing but itself, and show the org's name (as
// text, not markup) and the totals. The screenshot is saved as invoice.png
// in the test's temp dir (and in $CREDITD_UI_SCREENSHOT_DIR when set).
func TestInvoiceHTML_Chromium(t *testing.T) {
	browser := jobstest.Browser(t, "the HTML invoice", 900, 1200)
	var page bytes.Buffer
	if err := render.InvoiceHTML(&page, sampleInvoice()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/invoice" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page.Bytes())
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		messages []string
		requests []string
	)
	console := chromedp.Console(ctx)
	sent := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			mu.Lock()
			messages = append(messages, m.String())
			mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range sent {
			if err != nil {
				return
			}
			mu.Lock()
			requests = append(requests, ev.Request.URL)
			mu.Unlock()
		}
	}()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/invoice")); err != nil {
		t.Fatalf("open the invoice: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	jobstest.SaveScreenshot(t, "invoice.png", shot)

	for _, want := range []string{"<Acme & Co>", "<b>ops</b>", "Amount due", "450.00 ZAR", "1250.50 ZAR", "9447.875", "23.450"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q:\n%s", want, text)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range messages {
		if strings.HasPrefix(m, "error") || strings.HasPrefix(m, "exception") {
			t.Errorf("console: %s", m)
		}
	}
	for _, u := range requests {
		if u != srv.URL+"/invoice" && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s: it must need nothing but itself", u)
		}
	}
	if len(requests) == 0 {
		t.Error("no request was seen: the network events were not received")
	}
}
