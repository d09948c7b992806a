// The portal's brand and language in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Opens the link once per locale (the browser's Accept-Language follows it) and
// reports what a recipient sees: the language, the headings and buttons, the organisation's name,
// the logo (loaded, its size), the accent colour, the support link and the password sentence.
// Usage: node branding_check.mjs LINK_URL PORTAL_HOST LOCALE...   Prints {"results": {LOCALE: {...}}};
// the caller asserts.
import { chromium } from 'playwright-core';

const [link, host, ...locales] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', `--host-resolver-rules=MAP ${host} 127.0.0.1`],
});
const results = {};
try {
  for (const locale of locales) {
    // The portal's certificate is from the lab's test CA, which Chromium does not know.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, locale,
                                               extraHTTPHeaders: { 'Accept-Language': locale } });
    const page = await context.newPage();
    const dialogs = [];
    page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
    const response = await page.goto(link);
    const r = { status: response.status(), contentLanguage: response.headers()['content-language'] || null };
    r.htmlLang = await page.locator('html').getAttribute('lang');
    r.heading = await page.locator('h1').first().innerText();
    r.organization = await page.locator('header .org').innerText();
    r.portalName = await page.locator('header .app').innerText();
    r.buttons = await page.locator('button').allInnerTexts();
    r.footer = await page.locator('footer').innerText();
    r.supportHref = await page.locator('footer a').first().getAttribute('href');
    r.headerColor = await page.locator('header').evaluate((e) => getComputedStyle(e).backgroundColor);
    const logo = page.locator('header img');
    r.logoSrc = await logo.getAttribute('src');
    r.logoLoaded = await logo.evaluate((img) => img.complete && img.naturalWidth > 0);
    r.logoNaturalWidth = await logo.evaluate((img) => img.naturalWidth);
    r.title = await page.title();
    r.dialogs = dialogs;
    results[locale] = r;
    await context.close();
  }
  process.stdout.write(JSON.stringify({ results }) + '\n');
} finally {
  await browser.close();
}
