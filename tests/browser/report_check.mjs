// The TLS report's HTML page (`mailward report --html FILE`) in a real browser: Debian's Chromium,
// headless, driven by playwright-core (no browser download). Opens the file, records every request
// the page makes (any besides the file itself is a failure the caller sees) and what a person sees:
// the title, the charts' bars and segments, the tables' text, whether anything ran.
// Usage: node report_check.mjs FILE.html OUT_DIR. Prints {"result": {...}}; the caller asserts.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [file, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const fileUrl = pathToFileURL(file).href;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const result = { requests: [], blocked: [], dialogs: [], consoleErrors: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  // Every request goes through the route: the file itself is served, anything else is refused
  // and recorded.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url === fileUrl) return route.continue();
    result.blocked.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('request', (r) => result.requests.push(r.url()));
  page.on('dialog', async (d) => { result.dialogs.push(d.message()); await d.dismiss(); });
  page.on('console', (m) => { if (m.type() === 'error') result.consoleErrors.push(m.text()); });
  await page.goto(fileUrl);
  await page.waitForTimeout(300);  // let anything that could run, run
  result.title = await page.title();
  result.heading = await page.locator('h1').first().innerText();
  result.dayBars = await page.locator('svg#per-day g.day').count();
  result.daySegments = await page.locator('svg#per-day rect.seg').count();
  result.daySegmentParts = await page.locator('svg#per-day rect.seg').evaluateAll(
    (els) => els.map((e) => [e.closest('g').dataset.date, e.dataset.part, Number(e.dataset.count)]));
  result.domainShare = await page.locator('svg#domain-share rect.seg').evaluateAll(
    (els) => els.map((e) => [e.dataset.part, Number(e.dataset.count)]));
  result.topEscrow = await page.locator('table#top-escrow').innerText().catch(() => '');
  result.domainsTable = await page.locator('table#domains').innerText().catch(() => '');
  result.incidents = await page.locator('table#incidents').count();
  result.bodyText = await page.locator('body').innerText();
  // Elements the data could have injected if it were not escaped.
  result.scripts = await page.locator('script').count();
  result.images = await page.locator('img').count();
  result.svgBox = await page.locator('svg#per-day').boundingBox();
  await page.screenshot({ path: join(outDir, 'report.png'), fullPage: true });
  result.screenshot = join(outDir, 'report.png');
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ result }) + '\n');
