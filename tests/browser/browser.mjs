// The headless browser every browser test drives: Debian's Chromium through playwright-core,
// with a page that fails the test on console errors, page errors and failed requests.
import { chromium } from 'playwright-core';

/** Launches Debian's Chromium headless. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking'],
  });
}

/**
 * Opens a page of `size` ({width, height}) that records every console error, uncaught page
 * error, failed request and HTTP error status in `problems`, for the test to assert empty.
 */
export async function openPage(browser, size = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport: size });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  return { context, page, problems };
}
