package render_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/jobs/render"
)

// TestInvoiceHTML_Chromium opens the sample invoice in headless Chromium,
// served by a local HTTP server: the page must load without console errors
// or exceptions, request nothing but itself, and show the org's name (as
// text, not markup) and the totals; printed, it must come out on A4. The
// screenshot (invoice.png), the printed PDF (invoice.pdf) and a screenshot
// of the print layout (invoice-print.png) are saved in the test's temp dir
// (and in $CREDITD_UI_SCREENSHOT_DIR when set).
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
	pdf, err := chromedp.Run(ctx, chromedp.PrintToPDF(chromedp.PDFPreferCSSPageSize()))
	if err != nil {
		t.Fatalf("print: %v", err)
	}
	jobstest.SaveScreenshot(t, "invoice.pdf", pdf)
	if w, h := pdfPageSize(pdf); w < 594 || w > 596 || h < 841 || h > 843 {
		t.Errorf("the page printed on %gx%g pt, not A4 (595x842 pt): @page size is not applied", w, h)
	}
	// The print layout, as the printable width of A4 (182 mm) shows it.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatalf("print media: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(688, 1000)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	printed, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	jobstest.SaveScreenshot(t, "invoice-print.png", printed)

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

// mediaBox finds a page's size in a PDF Chromium printed (it writes the
// MediaBox uncompressed).
var mediaBox = regexp.MustCompile(`/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]`)

// pdfPageSize returns the width and height of the PDF's first page in
// points, or zeros.
func pdfPageSize(pdf []byte) (w, h float64) {
	m := mediaBox.FindSubmatch(pdf)
	if m == nil {
		return 0, 0
	}
	w, _ = strconv.ParseFloat(string(m[1]), 64)
	h, _ = strconv.ParseFloat(string(m[2]), 64)
	return w, h
}
