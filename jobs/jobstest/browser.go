package jobstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// ScreenshotDirEnv names a directory where browser tests also save their
// screenshots, to look at them after the run.
const ScreenshotDirEnv = "CREDITD_UI_SCREENSHOT_DIR"

// FindChromium returns the path of a headless-capable Chromium, or "".
func FindChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a headless Chromium for the test, with the flags that work
// on the development and CI machines (no sandbox, no GPU, no background
// networking, a fresh profile), and returns a context for chromedp; the test
// ends it. Where Chromium is not installed, the test is skipped with a
// message saying that what (such as "the operators' UI") was not tested in a
// browser: `make test` installs Chromium as root (deploy/dev/chromium.sh).
func Browser(t *testing.T, what string, width, height int) context.Context {
	t.Helper()
	chromium := FindChromium()
	if chromium == "" {
		t.Skipf("Chromium is not installed (Debian: apt-get install chromium; `make test` installs it when run as root): %s was not tested in a browser", what)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height))
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// SaveScreenshot writes png as name in the test's temp dir, and in
// $CREDITD_UI_SCREENSHOT_DIR when set.
func SaveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dirs := []string{t.TempDir()}
	if d := os.Getenv(ScreenshotDirEnv); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		path := filepath.Join(d, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
}
