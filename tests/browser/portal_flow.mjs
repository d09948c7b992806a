// The recipient's journey through the escrow portal in a real browser: Debian's Chromium, headless,
// driven by playwright-core (no browser download). Talks to its caller over stdin/stdout, one JSON
// object per line: it prints {"need":"code"} after asking for a code and reads {"code":"123456"}.
// Usage: node portal_flow.mjs LINK_URL PORTAL_HOST PORT OUT_DIR MARKER ATTACHMENT_SHA256 REPLY_FILE
// Prints {"result": {...}} at the end; the caller asserts. Never decides pass/fail itself except
// by throwing (exit 1) when a step cannot be done at all.
import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as readline from 'node:readline';

const [link, host, port, outDir, marker, attachmentSha, replyFile] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', `--host-resolver-rules=MAP ${host} 127.0.0.1`],
});
const result = { dialogs: [], consoleErrors: [], requests: [] };
try {
  // The portal's certificate is from the lab's test CA, which Chromium does not know.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true,
                                             viewport: { width: 390, height: 844 } });  // a phone
  const page = await context.newPage();
  page.on('dialog', async (d) => { result.dialogs.push(d.message()); await d.dismiss(); });
  page.on('console', (m) => { if (m.type() === 'error') result.consoleErrors.push(m.text()); });
  page.on('request', (r) => result.requests.push(r.url()));

  await page.goto(link);
  result.landingHeading = await page.locator('h1').first().innerText();
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await page.waitForLoadState('load');
  result.afterCodeHeading = await page.locator('h1').first().innerText();
  say({ need: 'code', heading: result.afterCodeHeading, url: page.url(), text: await page.locator('main p').first().innerText(), cookies: (await context.cookies()).map((c) => c.name) });
  const reply = JSON.parse((await lines.next()).value);
  await page.getByLabel('One-time code').fill(reply.code);
  await page.getByRole('button', { name: 'Open the message' }).click();
  await page.waitForURL('**/read');
  result.cookies = (await context.cookies()).map((c) => ({ name: c.name, secure: c.secure, httpOnly: c.httpOnly,
                                                           sameSite: c.sameSite }));

  const frame = page.frameLocator('iframe.body');
  result.bodyText = await frame.locator('body').innerText();
  result.bodyHasMarker = result.bodyText.includes(marker);
  await page.waitForTimeout(500);  // let any script that could run, run
  result.title = await page.title();
  const inner = page.frames().find((f) => f !== page.mainFrame());
  result.frameTitle = inner ? await inner.title() : null;
  result.frameSandbox = await page.locator('iframe.body').getAttribute('sandbox');
  await page.screenshot({ path: join(outDir, 'message.png'), fullPage: true });
  result.screenshot = join(outDir, 'message.png');

  const [download] = await Promise.all([page.waitForEvent('download'),
                                        page.getByRole('link', { name: 'figures.bin' }).click()]);
  const saved = join(outDir, 'download.bin');
  await download.saveAs(saved);
  result.downloadName = download.suggestedFilename();
  result.downloadSha = createHash('sha256').update(readFileSync(saved)).digest('hex');
  result.downloadMatches = result.downloadSha === attachmentSha;

  await page.getByLabel('Your reply').fill(`Browser reply ${marker}-R`);
  await page.setInputFiles('#files', replyFile);  // the reply form's file input
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.waitForURL('**/read?sent=1');
  result.replyNotice = await page.locator('.note').first().innerText();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForLoadState('load');
  result.signedOut = await page.locator('h1').first().innerText();
  const back = await page.goto(`https://${host}:${port}/read`);
  result.readAfterLogout = back.status();
  result.foreignRequests = result.requests.filter((u) => !u.startsWith(`https://${host}:${port}/`)
                                                        && !u.startsWith('about:') && !u.startsWith('data:'));
  delete result.requests;
  say({ result });
} finally {
  await browser.close();
  rl.close();
}
