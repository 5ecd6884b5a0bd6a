#!/usr/bin/env bash
# Makes sure a headless Chromium is installed for the operators' UI test
# (cmd/creditd/ui_test.go). As root on Debian it installs the chromium
# package; anywhere else it only says what is missing, and the test skips
# with the same message. It never fails the build: the UI test is the one
# test that may be skipped, where the browser cannot be had.
set -uo pipefail

for name in chromium chromium-browser google-chrome google-chrome-stable; do
	if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "chromium: installing Debian's chromium package for the browser test" >&2
	if { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; } >&2; then
		exit 0
	fi
	echo "chromium: apt-get install chromium failed; the browser test will be skipped" >&2
	exit 0
fi
echo "chromium: not installed (Debian: apt-get install chromium); the browser test will be skipped" >&2
exit 0
