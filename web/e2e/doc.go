// Package e2e holds p2pchat's browser end-to-end tests; it has no code of
// its own outside _test.go files.
//
// Each test starts the real server in-process on 127.0.0.1 and drives two or
// more separate headless Chromium processes (one chromedp ExecAllocator
// each, so each has its own user-data-dir, cookies and storage) through the
// real page: they log in, call, chat over a real RTCDataChannel on loopback
// and hang up, exactly as users do.
//
// The browser is $CHROME_BIN, else chromium, chromium-browser,
// google-chrome-stable or google-chrome on PATH. Without one the tests skip
// with a message saying how to install it, unless P2PCHAT_REQUIRE_BROWSER=1
// (set by .ci/run), which turns the skip into a failure.
//
// TestCrossBrowser adds Firefox ($FIREFOX_BIN, else firefox-esr or
// firefox), driven over WebDriver BiDi by a small client of our own
// (bidi_test.go). Its cases are written against *tab (tab_test.go), which
// drives either browser through the page's own DOM.
//
// The server is given an empty ICE server list, so no test ever tries to
// reach a STUN server on the internet; loopback host candidates suffice.
//
// Setting P2PCHAT_SCREENSHOTS=<dir> makes TestScreenshots write PNGs of
// every screen into that directory (see `make screenshots`).
package e2e
