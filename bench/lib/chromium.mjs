// Headless Chromium for the browser benchmarks: Debian's /usr/bin/chromium driven by playwright-core (no browser
// download), with the flags that keep it quiet on a machine without network.
//
// API (keep it this small; bench/ort and bench/e2e both use it):
//
//   import { launchChromium, openPage } from '../lib/chromium.mjs';
//   const browser = await launchChromium();                  // options: args = [] (extra flags), headless = true
//   const page = await openPage(browser, url, { onConsole, requireIsolation = true, timeoutMs = 60000 });
//   ... await page.evaluate(...) / page.waitForFunction(...) ...
//   await browser.close();
//
// openPage forwards the page's console lines to onConsole(text, type) (default: stderr with a [page] prefix), turns
// uncaught page errors into console lines, and, unless requireIsolation is false, throws when the page is not
// cross-origin isolated (then SharedArrayBuffer, and so WebAssembly threads, would be missing).
// Environment: CHROMIUM_PATH overrides the executable.
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium({ args = [], headless = true } = {}) {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless, args: [...CHROMIUM_ARGS, ...args] });
}

export async function openPage(browser, url, { onConsole, requireIsolation = true, timeoutMs = 60000 } = {}) {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeoutMs);
  const report = onConsole || ((text) => process.stderr.write(`[page] ${text}\n`));
  page.on('console', (msg) => report(msg.text(), msg.type()));
  page.on('pageerror', (err) => report(`uncaught: ${err.stack || err}`, 'error'));
  await page.goto(url, { waitUntil: 'load' });
  if (requireIsolation && !(await page.evaluate(() => globalThis.crossOriginIsolated === true))) {
    await page.close();
    throw new Error(`${url} is not cross-origin isolated (check the COOP/COEP headers): no threads there`);
  }
  return page;
}
