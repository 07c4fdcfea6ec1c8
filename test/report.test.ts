/**
 * The HTML reports in a real browser: Debian's Chromium, headless, through playwright-core. Each page must load
 * offline with no errors, draw its chart (pixels, not just markup), show the expected table rows, and answer the
 * pointer (chart read-out, flame graph zoom). Screenshots go to test-output/ for people to look at.
 *
 * Needs `chromium` (apt-get install -y chromium); CHROMIUM_PATH overrides /usr/bin/chromium.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'test-output');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const SCRIPTS = path.join(ROOT, 'examples/scripts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const missing = !existsSync(CHROMIUM);
// In CI a missing browser is a failure (.ci/run installs it); on a developer's machine, a skip.
const skip = missing && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium)` : false;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

/** Runs in the page (a string: the test files are typed without the DOM). */
const INK = `async (sel) => {
  const svg = document.querySelector(sel);
  const w = svg.viewBox.baseVal.width, h = svg.viewBox.baseVal.height;
  const url = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(new XMLSerializer().serializeToString(svg));
  const img = new Image();
  await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; img.src = url; });
  const canvas = document.createElement('canvas');
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, w, h);
  ctx.drawImage(img, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235) ink++;
  return ink / (w * h);
}`;

interface Opened {
  page: Page;
  errors: string[];
  requests: string[];
}

// Each test carries the skip (a skipped suite would be reported as `# skipped 0`).
describe('HTML reports in Chromium', { concurrency: 1 }, () => {
  let browser: Browser;

  before(async () => {
    if (skip) return;
    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  });

  after(async () => {
    await browser?.close();
  });

  /** Open a report file; record console errors, page errors and every request that is not the file itself. */
  async function open(file: string): Promise<Opened> {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url === `file://${file}`) return route.continue();
      requests.push(url);
      return route.abort();
    });
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    return { page, errors, requests };
  }

  /** Share of non-white pixels of the SVG `selector`, rendered onto a canvas in the page. */
  function inkOf(page: Page, selector: string): Promise<number> {
    return page.evaluate(`(${INK})(${JSON.stringify(selector)})`);
  }

  test('the report of a leaky script: chart, top allocations, flame graph, no errors, nothing from the network', { skip }, async () => {
    const file = path.join(OUT, 'report-leaky.html');
    const run = await cli(['run', '-q', '--mode', 'full', '--top', '5', '--frames', '5', '--report', file, path.join(SCRIPTS, 'leaky.py'), '4000']);
    assert.equal(run.code, 0, run.stderr);
    const { page, errors, requests } = await open(file);
    try {
      assert.equal(await page.title(), `pyworkers: ${path.join(SCRIPTS, 'leaky.py')}`);
      // The chart drew: an RSS line across the plot, a traced area, the peak marked, labelled axes.
      const rss = await page.locator('#memory-chart .rss-line').boundingBox();
      assert.ok(rss && rss.width > 500 && rss.height > 20, `RSS line box ${JSON.stringify(rss)}`);
      assert.equal(await page.locator('#memory-chart .traced-area').count(), 1);
      assert.equal(await page.locator('#memory-chart .peak-dot').count(), 1);
      assert.match((await page.locator('#memory-chart .mark-label').allTextContents()).join(' '), /peak RSS \d.*traced peak \d/);
      const titles = await page.locator('#memory-chart .axis-title').allTextContents();
      assert.match(titles[0]!, /^time since the script started \((ms|s)\)$/);
      assert.equal(titles[1], 'memory (MiB)');
      const chartInk = await inkOf(page, '#memory-chart');
      assert.ok(chartInk > 0.02, `chart ink ${chartInk}`);

      // The table: five rows, the leaking line first.
      const rows = page.locator('#top-table tbody tr');
      assert.equal(await rows.count(), 5);
      const first = await rows.first().innerText();
      assert.match(first, /leaky\.py:\d+/);
      assert.match(first, /handle_request/);
      assert.match(first, /'x' \* 1024/);
      assert.match(first, /MiB/);

      // The flame graph: frames drawn, labelled, zoomable.
      const frames = page.locator('#flame-graph g.frame');
      assert.ok((await frames.count()) >= 4, `${await frames.count()} frames`);
      assert.match(await frames.nth(1).locator('title').textContent() ?? '', /<module>|main|handle_request/);
      assert.ok((await inkOf(page, '#flame-graph')) > 0.2);
      assert.ok(await page.locator('#flame-reset').isDisabled());
      const deep = page.locator('#flame-graph g.frame[data-depth="3"]').first();
      await deep.click();
      assert.ok(await page.locator('#flame-reset').isEnabled());
      assert.match(await page.locator('#flame-focus').innerText(), /zoomed into/);
      await page.locator('#flame-reset').click();
      assert.ok(await page.locator('#flame-reset').isDisabled());

      // The chart read-out follows the pointer.
      await page.locator('#chart-overlay').hover();
      const tip = await page.locator('#chart-tip').innerText();
      assert.match(tip, /RSS\s+\d[\d.]* MiB/);
      assert.match(tip, /traced\s+\d/);
      await page.mouse.move(0, 0);

      assert.ok(await page.locator('#hints .hint').count() >= 1);
      assert.match(await page.locator('#summary').innerText(), /PEAK RSS\s+\d/i);
      await page.screenshot({ path: path.join(OUT, 'report-leaky.png'), fullPage: true });
      // Narrow and wide: each header sits over its own column (on a phone the code column goes, header and all).
      for (const width of [700, 1200]) {
        await page.setViewportSize({ width, height: 900 });
        const visible = (selector: string) => page.locator(selector).evaluateAll((cells) => cells.filter((c) => (globalThis as unknown as { getComputedStyle(e: unknown): { display: string } }).getComputedStyle(c).display !== 'none').map((c) => c.getBoundingClientRect().left));
        const heads = await visible('#top-table thead th');
        const cells = await visible('#top-table tbody tr:first-child td');
        assert.equal(heads.length, cells.length, `${width} px: ${heads.length} headers over ${cells.length} cells`);
        heads.forEach((left, i) => assert.ok(Math.abs(left - cells[i]!) < 1, `${width} px: column ${i} header at ${left}, cells at ${cells[i]}`));
        await page.screenshot({ path: path.join(OUT, `report-leaky-${width}.png`), fullPage: true });
      }
      assert.deepEqual(errors, []);
      assert.deepEqual(requests, []);
    } finally {
      await page.close();
    }
  });

  test('the report of a script stopped by the cap: the cap drawn, the failure shown', { skip }, async () => {
    const file = path.join(OUT, 'report-cap.html');
    const run = await cli(['run', '-q', '--mode', 'full', '--max-memory', '150MB', '--report', file, path.join(SCRIPTS, 'cap.py')]);
    assert.equal(run.code, 1, run.stderr);
    const { page, errors, requests } = await open(file);
    try {
      assert.equal(await page.locator('#memory-chart .cap-line').count(), 1);
      assert.match(await page.locator('#summary').innerText(), /hit the memory cap/);
      assert.match(await page.locator('header .badge').innerText(), /memory-cap/);
      assert.match(await page.locator('#top-table tbody tr').first().innerText(), /chunks\.append/);
      assert.ok((await inkOf(page, '#memory-chart')) > 0.02);
      await page.screenshot({ path: path.join(OUT, 'report-cap.png'), fullPage: true });
      assert.deepEqual(errors, []);
      assert.deepEqual(requests, []);
    } finally {
      await page.close();
    }
  });

  test('the leak report: RSS per call drawn, the growing lines listed', { skip }, async () => {
    const file = path.join(OUT, 'report-leaks.html');
    const run = await cli(['leaks', `${path.join(SCRIPTS, 'leaky.py')}:handle_request`, '--iterations', '30', '--report', file]);
    assert.equal(run.code, 0, run.stderr);
    const { page, errors, requests } = await open(file);
    try {
      assert.ok((await inkOf(page, '#memory-chart')) > 0.02);
      assert.deepEqual(await page.locator('#memory-chart .axis-title').first().allTextContents(), ['call']);
      const first = await page.locator('#top-table tbody tr').first().innerText();
      assert.match(first, /leaky\.py:\d+/);
      assert.match(first, /steady/);
      await page.screenshot({ path: path.join(OUT, 'report-leaks.png'), fullPage: true });
      assert.deepEqual(errors, []);
      assert.deepEqual(requests, []);
    } finally {
      await page.close();
    }
  });
});
