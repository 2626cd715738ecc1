// The viewer end to end in headless Chromium: the list, picking an image, tiles drawn and
// matching the image, zoom and pan, deep links and history, uploads (good, bad, with a token),
// the download counter, no console errors or failed requests, screenshots at phone and desktop
// sizes.
//
// node tests/browser/viewer.mjs BASE_URL ARTIFACTS_DIR GOOD_PNG [TOKEN_BASE_URL TOKEN]
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { launch, openPage } from './browser.mjs';

const [base, artifacts, goodPng, tokenBase, token] = process.argv.slice(2);
assert.ok(base && artifacts && goodPng, 'usage: viewer.mjs BASE_URL ARTIFACTS_DIR GOOD_PNG [TOKEN_BASE_URL TOKEN]');

const started = Date.now();
const step = (what) => console.log(`[viewer ${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);
const shot = (name) => path.join(artifacts, name);

/** Records every tile response of a page: URL parts, status and sizes on the wire. */
function trackTiles(page) {
  const tiles = [];
  page.on('response', (response) => {
    const m = /\/api\/images\/([^/]+)\/tiles\/(\d+)\/(\d+)\/(\d+)\.\w+/.exec(new URL(response.url()).pathname);
    if (!m) return;
    const record = { id: decodeURIComponent(m[1]), z: +m[2], x: +m[3], y: +m[4], status: response.status(), at: Date.now(), bytes: null };
    record.sizes = response.request().sizes().then((s) => { record.bytes = s.responseBodySize + s.responseHeadersSize; }, () => {});
    tiles.push(record);
  });
  return tiles;
}

/** Waits until an image is shown and every tile of the view has loaded and faded in. */
async function settled(page, id) {
  await page.waitForFunction((want) => {
    const v = window.gigatile && window.gigatile.view();
    if (!v || (want && v.id !== want) || v.tilesLoading || v.moving) return false;
    const imgs = [...document.querySelectorAll('.image-tiles img.leaflet-tile')];
    return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0);
  }, id, { timeout: 20000, polling: 100 });
  await page.waitForTimeout(350); // Leaflet's fade-in
  return page.evaluate(() => window.gigatile.view());
}

/**
 * Compares what the map draws with the image: a grid of cell averages over the image's area
 * in a screenshot of the map, against the same cells of the image's z = 0 tile fetched
 * directly. Returns {meanDiff, maxDiff, spread} (spread: how much the cells differ, i.e. not
 * a blank or flat drawing).
 */
async function compareWithImage(page) {
  const png = (await page.locator('#map').screenshot()).toString('base64');
  return page.evaluate(async (png) => {
    const view = window.gigatile.view();
    const load = (src) => new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = reject;
      img.src = src;
    });
    const pixels = (img) => {
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      return ctx.getImageData(0, 0, canvas.width, canvas.height);
    };
    const id = encodeURIComponent(view.id);
    const tileBlob = await (await fetch(`api/images/${id}/tiles/0/0/0.jpg`)).blob();
    const tile = pixels(await load(URL.createObjectURL(tileBlob)));
    const screen = pixels(await load(`data:image/png;base64,${png}`));
    const meta = await (await fetch(`api/images/${id}/meta`)).json();
    const w0 = meta.width / 2 ** meta.maxZoom;
    const h0 = meta.height / 2 ** meta.maxZoom;
    const r = view.imageOnScreen;
    const avg = (data, x0, y0, x1, y1) => {
      const sum = [0, 0, 0];
      let n = 0;
      for (let y = Math.ceil(y0); y < Math.floor(y1); y += 1) {
        for (let x = Math.ceil(x0); x < Math.floor(x1); x += 1) {
          const i = (y * data.width + x) * 4;
          sum[0] += data.data[i]; sum[1] += data.data[i + 1]; sum[2] += data.data[i + 2];
          n += 1;
        }
      }
      return sum.map((s) => s / Math.max(n, 1));
    };
    // Cells under the controls floating over the map do not count.
    const mapBox = document.getElementById('map').getBoundingClientRect();
    const covers = ['#minimap', '.toolbar', '#attribution', '#notice']
      .map((sel) => document.querySelector(sel))
      .filter((node) => node && !node.hidden)
      .map((node) => node.getBoundingClientRect())
      .map((b) => ({ left: b.left - mapBox.left, top: b.top - mapBox.top, right: b.right - mapBox.left, bottom: b.bottom - mapBox.top }));
    const covered = (x0, y0, x1, y1) => covers.some((c) => x0 < c.right && x1 > c.left && y0 < c.bottom && y1 > c.top);
    const cols = 6;
    const rows = 4;
    const diffs = [];
    const means = [];
    for (let j = 0; j < rows; j += 1) {
      for (let i = 0; i < cols; i += 1) {
        // Inner part of each cell, so resampling at the cell edges does not count.
        const fx0 = (i + 0.15) / cols; const fx1 = (i + 0.85) / cols;
        const fy0 = (j + 0.15) / rows; const fy1 = (j + 0.85) / rows;
        const sx = (f) => r.left + f * (r.right - r.left);
        const sy = (f) => r.top + f * (r.bottom - r.top);
        if (covered(sx(fx0), sy(fy0), sx(fx1), sy(fy1))) continue;
        const a = avg(screen, sx(fx0), sy(fy0), sx(fx1), sy(fy1));
        const b = avg(tile, fx0 * w0, fy0 * h0, fx1 * w0, fy1 * h0);
        diffs.push(Math.max(...a.map((v, k) => Math.abs(v - b[k]))));
        means.push(a[0] + a[1] + a[2]);
      }
    }
    const mean = means.reduce((s, v) => s + v, 0) / means.length;
    return {
      meanDiff: diffs.reduce((s, v) => s + v, 0) / diffs.length,
      maxDiff: Math.max(...diffs),
      cells: diffs.length,
      spread: Math.sqrt(means.reduce((s, v) => s + (v - mean) ** 2, 0) / means.length) / 3,
      onScreen: r,
    };
  }, png);
}

/** Problems of a page except those the test caused on purpose (exactly as expected). */
function unexpected(problems, expected) {
  const left = [...problems];
  for (const pattern of expected) {
    const i = left.findIndex((p) => pattern.test(p));
    assert.ok(i >= 0, `an expected problem did not occur: ${pattern}; problems: ${problems.join('\n')}`);
    left.splice(i, 1);
  }
  return left;
}

const browser = await launch();
try {
  // ---------------------------------------------------------------- desktop: list and first view
  const desk = await openPage(browser, { width: 1440, height: 900 });
  const page = desk.page;
  const tiles = trackTiles(page);
  await page.goto(base + '/');
  step('page open');
  await page.waitForFunction(() => document.querySelectorAll('#images .item').length === 3);
  const items = await page.$$eval('#images .item', (buttons) => buttons.map((b) => ({
    id: b.dataset.id,
    name: b.querySelector('.item-name').textContent,
    facts: b.querySelector('.item-facts').textContent,
    status: b.querySelector('.item-status').textContent,
  })));
  assert.deepEqual(items.map((i) => i.name), ['harbour.png', 'broken.png', 'night.jpg']);
  assert.match(items[0].facts, /3,000 × 2,000/);
  assert.match(items[0].facts, /\d(\.\d+)? (KB|MB)/);
  assert.match(items[2].facts, /3,900 × 2,600/);
  assert.deepEqual(items.map((i) => i.status.replace(/^failed: corrupt image: .*/, 'failed: corrupt image')), ['ready', 'failed: corrupt image', 'ready']);
  assert.equal(await page.locator('#images .item[data-id="broken.png"] img').count(), 0, 'no thumbnail for a failed image');

  // With no deep link, the first ready image opens by itself.
  let view = await settled(page, 'album/harbour.png');
  assert.equal(await page.getAttribute('#images .item[data-id="album/harbour.png"]', 'aria-current'), 'true');
  assert.match(new URL(page.url()).hash, /id=album%2Fharbour\.png/);
  step('first image shown by itself');

  // Filter box.
  await page.fill('#filter', 'nigh');
  assert.equal(await page.locator('#images .item').count(), 1);
  await page.fill('#filter', '');
  assert.equal(await page.locator('#images .item').count(), 3);

  // A failed image says why, and costs no tile request.
  await page.click('#images .item[data-id="broken.png"]');
  await page.waitForSelector('#notice:has-text("could not be prepared: corrupt image")');
  await page.goBack();
  await settled(page, 'album/harbour.png');

  // ---------------------------------------------------------------- pick an image
  const picked = Date.now();
  await page.click('#images .item[data-id="night.jpg"]');
  view = await settled(page, 'night.jpg');
  assert.equal(await page.getAttribute('#images .item[data-id="night.jpg"]', 'aria-current'), 'true');
  assert.equal(await page.getAttribute('#images .item[data-id="album/harbour.png"]', 'aria-current'), null);
  assert.equal(view.maxZoom, 4);
  await page.screenshot({ path: shot('desktop.png') });
  const fitted = await compareWithImage(page);
  step(`night.jpg drawn: mean diff ${fitted.meanDiff.toFixed(1)}, max ${fitted.maxDiff.toFixed(1)}, spread ${fitted.spread.toFixed(1)}`);
  assert.ok(fitted.cells >= 16, `too few cells compared: ${JSON.stringify(fitted)}`);
  assert.ok(fitted.spread > 8, `the drawing looks blank or flat: ${JSON.stringify(fitted)}`);
  assert.ok(fitted.meanDiff < 10 && fitted.maxDiff < 30, `the drawing does not match the image: ${JSON.stringify(fitted)}`);
  assert.ok(fitted.onScreen.right - fitted.onScreen.left > 600, 'the image is fitted to the view');

  let stats = await page.evaluate(() => window.gigatile.downloads());
  assert.ok(stats.transferred > 0, JSON.stringify(stats));
  assert.ok(stats.fraction > 0 && stats.fraction < 1, JSON.stringify(stats));
  const firstTransferred = stats.transferred;
  assert.match(await page.textContent('#downloads'), /transferred of .* source · .* % of full-res pixels/);

  // ---------------------------------------------------------------- zoom: button, keyboard, wheel
  const zoomBefore = view.zoom;
  await page.click('#zoom-in');
  await settled(page, 'night.jpg');
  await page.focus('#map');
  await page.keyboard.press('Equal');
  await settled(page, 'night.jpg');
  const box = await page.locator('#map').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  for (let i = 0; i < 3; i += 1) { await page.mouse.wheel(0, -200); await page.waitForTimeout(120); }
  view = await settled(page, 'night.jpg');
  assert.ok(view.zoom >= zoomBefore + 2, `zoomed from ${zoomBefore} to ${view.zoom}`);
  // A burst of zooms that does not wait for tiles: nothing is logged as failed or aborted.
  for (const button of ['#zoom-out', '#zoom-out', '#zoom-out', '#zoom-in', '#zoom-out', '#zoom-in']) {
    await page.click(button);
    await page.waitForTimeout(60);
  }
  view = await settled(page, 'night.jpg');
  // Over-zoom goes past native resolution without asking for tiles deeper than native.
  await page.click('#zoom-in');
  view = await settled(page, 'night.jpg');
  assert.ok(view.zoom > view.maxZoom, `over-zoom: ${view.zoom}`);
  while (view.zoom > view.maxZoom) { await page.click('#zoom-out'); view = await settled(page, 'night.jpg'); }
  while (view.zoom < view.maxZoom) { await page.click('#zoom-in'); view = await settled(page, 'night.jpg'); }
  const deepest = Math.max(...tiles.filter((t) => t.id === 'night.jpg').map((t) => t.z));
  assert.equal(deepest, view.maxZoom, 'native-resolution tiles were fetched');
  const zoomText = await page.textContent('#zoom-level');
  assert.match(zoomText, /^z [\d.]+ \/ 4 · \d+ %$/);
  step(`zoomed to ${view.zoom} (${zoomText})`);

  // ---------------------------------------------------------------- pan: drag and keys
  const before = view.center;
  const fetchedBeforePan = tiles.length;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 - 250, box.y + box.height / 2 - 150, { steps: 8 });
  await page.mouse.up();
  await page.focus('#map');
  await page.keyboard.press('ArrowRight');
  view = await settled(page, 'night.jpg');
  const scale = 2 ** (view.zoom - view.maxZoom); // screen px per image px
  assert.ok(view.center.x - before.x > 0.8 * 250 / scale && view.center.y - before.y > 0.8 * 150 / scale, `panned from ${JSON.stringify(before)} to ${JSON.stringify(view.center)}`);
  assert.ok(tiles.length > fetchedBeforePan, 'panning fetched new tiles');
  step('panned');

  // Pointer position and click.
  await page.mouse.move(box.x + 300, box.y + 300);
  assert.match(await page.textContent('#cursor'), /^x \d+ · y \d+$/);
  await page.mouse.click(box.x + 300, box.y + 300);
  assert.match(await page.textContent('#clicked'), /clicked x \d+, y \d+/);

  // Every tile asked for exists: inside the image and no deeper than native.
  await Promise.all(tiles.map((t) => t.sizes));
  for (const t of tiles) {
    const size = t.id === 'night.jpg' ? [3900, 2600] : [3000, 2000];
    const scale = 2 ** (4 - t.z);
    assert.ok(t.z <= 4 && t.x * 256 < size[0] / scale && t.y * 256 < size[1] / scale, `a tile outside the image: ${JSON.stringify(t)}`);
    assert.equal(t.status, 200, JSON.stringify(t));
    assert.notEqual(t.id, 'broken.png');
  }

  // ---------------------------------------------------------------- download counter
  await page.waitForTimeout(200);
  stats = await page.evaluate(() => window.gigatile.downloads());
  const wire = tiles.filter((t) => t.id === 'night.jpg' && t.at >= picked - 50).reduce((s, t) => s + (t.bytes || 0), 0);
  const allNight = tiles.filter((t) => t.id === 'night.jpg').reduce((s, t) => s + (t.bytes || 0), 0);
  step(`downloads: ${JSON.stringify(stats)}; tiles on the wire since picked: ${wire} B`);
  assert.ok(stats.transferred > firstTransferred, 'the counter grew as the view moved');
  assert.ok(stats.transferred <= allNight * 1.02 + 2048, `more counted (${stats.transferred}) than received (${allNight})`);
  assert.ok(stats.transferred >= wire * 0.5, `far less counted (${stats.transferred}) than received (${wire})`);
  assert.ok(stats.fraction > 0 && stats.fraction < 1, JSON.stringify(stats));
  assert.ok(stats.sourceBytes > 0);

  // ---------------------------------------------------------------- deep link and history
  view = await settled(page, 'night.jpg');
  await page.waitForFunction(() => /[#&]z=/.test(location.hash));
  const link = page.url();
  const linkedView = view;
  const linked = new URL(link).hash;
  assert.match(linked, /^#id=night\.jpg&x=\d+&y=\d+&z=[\d.]+$/);
  const second = await openPage(browser, { width: 1440, height: 900 });
  await second.page.goto(link);
  const restored = await settled(second.page, 'night.jpg');
  assert.equal(restored.zoom, view.zoom);
  assert.ok(Math.abs(restored.center.x - view.center.x) <= 2 && Math.abs(restored.center.y - view.center.y) <= 2,
    `deep link restored ${JSON.stringify(restored.center)}, expected ${JSON.stringify(view.center)}`);
  await second.page.reload();
  const reloaded = await settled(second.page, 'night.jpg');
  assert.equal(reloaded.zoom, view.zoom);
  assert.deepEqual(unexpected(second.problems, []), []);
  await second.context.close();
  step('deep link restored in a new page and after a reload');

  await page.goBack();
  await settled(page, 'album/harbour.png');
  assert.equal(await page.getAttribute('#images .item[data-id="album/harbour.png"]', 'aria-current'), 'true');
  await page.goForward();
  const forward = await settled(page, 'night.jpg');
  assert.equal(forward.zoom, view.zoom, 'forward returns to the settled view');
  step('back and forward');

  // ---------------------------------------------------------------- upload: a good file
  await page.setInputFiles('#upload-file', goodPng);
  await page.fill('#upload-copyright', '© Lighthouse <b>keepers</b>');
  await page.fill('#upload-link', 'https://example.org/lighthouse');
  await page.click('#upload-submit');
  await page.waitForFunction(() => {
    const v = window.gigatile.view();
    return v && v.id.startsWith('uploads/');
  }, null, { timeout: 30000 });
  view = await settled(page);
  assert.match(view.id, /^uploads\//);
  assert.equal(await page.locator(`#images .item[data-id="${view.id}"] .item-name`).textContent(), 'lighthouse.png');
  const attribution = page.locator('#attribution a').first();
  assert.equal(await attribution.textContent(), '© Lighthouse <b>keepers</b>', 'user text is shown as text');
  assert.equal(await attribution.getAttribute('href'), 'https://example.org/lighthouse');
  assert.equal(await page.locator('#attribution b').count(), 0, 'no markup from user text');
  assert.match(await page.textContent('#upload-message'), /Uploaded lighthouse\.png/);
  const uploaded = await compareWithImage(page);
  assert.ok(uploaded.spread > 5 && uploaded.meanDiff < 10, JSON.stringify(uploaded));
  step(`uploaded and opened ${view.id}`);

  // ---------------------------------------------------------------- upload: drag and drop
  const dropped = await page.evaluateHandle((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
    return transfer;
  }, fs.readFileSync(goodPng).toString('base64'));
  await page.dispatchEvent('#stage', 'dragenter', { dataTransfer: dropped });
  assert.equal(await page.isVisible('#drop-overlay'), true, 'dragging a file over the page shows where to drop');
  await page.dispatchEvent('#stage', 'drop', { dataTransfer: dropped });
  assert.equal(await page.isVisible('#drop-overlay'), false);
  await page.waitForFunction((before) => { const v = window.gigatile.view(); return v && v.id.startsWith('uploads/') && v.id !== before; }, view.id, { timeout: 30000 });
  view = await settled(page);
  assert.equal(await page.locator(`#images .item[data-id="${view.id}"] .item-name`).textContent(), 'dropped.png');
  step(`dropped and opened ${view.id}`);

  // ---------------------------------------------------------------- upload: a bad file
  await page.setInputFiles('#upload-file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('these are notes, not an image\n'.repeat(20)) });
  await page.click('#upload-submit');
  await page.waitForSelector('#upload-message.error');
  const refusal = await page.textContent('#upload-message');
  assert.match(refusal, /^Not an image gigatile can read/);
  assert.equal(await page.locator('#images .item').count(), 5, 'the bad file did not join the list');
  step(`bad upload refused: ${refusal}`);

  // Beyond MAX_UPLOAD_SIZE (4 MiB on this server).
  await page.setInputFiles('#upload-file', { name: 'huge.tif', mimeType: 'image/tiff', buffer: Buffer.alloc(6 << 20, 7) });
  await page.click('#upload-submit');
  await page.waitForFunction(() => /^Too large/.test(document.getElementById('upload-message').textContent));
  step(`too large refused: ${await page.textContent('#upload-message')}`);

  assert.deepEqual(unexpected(desk.problems, [
    new RegExp(`^HTTP 415: ${base}/api/upload$`),
    /^console: Failed to load resource: the server responded with a status of 415/,
    new RegExp(`^HTTP 413: ${base}/api/upload$`),
    /^console: Failed to load resource: the server responded with a status of 413/,
  ]), []);

  // Keyboard: the list is reachable and arrow keys move through it.
  await page.focus('#images .item[data-id="album/harbour.png"]');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.id), 'broken.png');
  await desk.context.close();

  // ---------------------------------------------------------------- phone
  const phone = await openPage(browser, { width: 390, height: 844 });
  await phone.page.goto(link);
  const phoneView = await settled(phone.page, 'night.jpg');
  assert.equal(phoneView.zoom, linkedView.zoom, 'the deep link opens at its zoom on a phone too');
  assert.equal(await phone.page.evaluate(() => document.documentElement.scrollWidth), 390, 'no horizontal overflow');
  await phone.page.click('#fit');
  await settled(phone.page, 'night.jpg');
  const phoneDraw = await compareWithImage(phone.page);
  assert.ok(phoneDraw.spread > 8, JSON.stringify(phoneDraw));
  await phone.page.screenshot({ path: shot('phone.png') });
  assert.equal(await phone.page.isVisible('#menu'), true);
  assert.equal(await phone.page.evaluate(() => document.getElementById('sidebar').inert), true, 'the closed drawer takes no focus');
  await phone.page.click('#menu');
  assert.equal(await phone.page.evaluate(() => document.getElementById('sidebar').inert), false);
  await phone.page.waitForTimeout(300);
  await phone.page.screenshot({ path: shot('phone-list.png') });
  await phone.page.click('#images .item[data-id="album/harbour.png"]');
  await settled(phone.page, 'album/harbour.png');
  assert.equal(await phone.page.getAttribute('#menu', 'aria-expanded'), 'false', 'picking an image closes the drawer');
  assert.deepEqual(unexpected(phone.problems, []), []);
  await phone.context.close();
  step('phone');

  // ---------------------------------------------------------------- an image being built
  // The list as the server gives it while a pyramid builds (faked: builds here are too fast to
  // catch): a progress bar, no thumbnail yet, and polling every two seconds.
  const building = await openPage(browser, { width: 1280, height: 800 });
  let listed = 0;
  await building.page.route('**/api/images', (route) => {
    listed += 1;
    route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify([{ id: 'vast.tif', original_filename: 'vast.tif', width: 60000, height: 40000, bytes: 7.2e9, format: 'tiff', status: 'building', progress: 0.42, copyright_text: null, copyright_link: null }]),
    });
  });
  await building.page.route('**/api/images/vast.tif/meta', (route) => route.fulfill({
    contentType: 'application/json',
    body: JSON.stringify({ width: 60000, height: 40000, tileSize: 256, maxZoom: 8, readyMaxZoom: null, status: 'building', progress: 0.42, bytes: 7.2e9, format: 'tiff', copyright_text: null, copyright_link: null }),
  }));
  await building.page.goto(base + '/');
  await building.page.waitForSelector('#images .item[data-id="vast.tif"] progress');
  assert.equal(await building.page.evaluate(() => document.querySelector('#images .item progress').value), 0.42);
  assert.match(await building.page.textContent('#images .item .item-status'), /preparing 42 %/);
  assert.match(await building.page.textContent('#images .item .item-facts'), /60,000 × 40,000 \(2\.4 Gpx\) · 7\.20 GB · TIFF/);
  assert.equal(await building.page.locator('#images .item img').count(), 0, 'no thumbnail before a level is ready');
  await building.page.waitForSelector('#notice:has-text("Preparing this image… 42 %")');
  await building.page.waitForTimeout(2300);
  assert.ok(listed >= 2, `the list is polled while an image builds (${listed} times)`);
  assert.deepEqual(unexpected(building.problems, []), []);
  await building.context.close();
  step('an image being built');

  // ---------------------------------------------------------------- behind a proxy under a prefix
  // Only /viewer/... is forwarded (prefix removed): any absolute URL in the app would 404.
  const target = new URL(base);
  const proxy = http.createServer((req, res) => {
    if (!req.url.startsWith('/viewer/')) { res.writeHead(404); res.end(); return; }
    const forward = http.request({ host: target.hostname, port: target.port, path: req.url.slice('/viewer'.length), method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  try {
    const prefixed = await openPage(browser, { width: 1024, height: 700 });
    await prefixed.page.goto(`http://127.0.0.1:${proxy.address().port}/viewer/`);
    await settled(prefixed.page, 'album/harbour.png');
    assert.deepEqual(unexpected(prefixed.problems, []), []);
    await prefixed.context.close();
  } finally {
    proxy.closeAllConnections();
    proxy.close();
  }
  step('under a path prefix');

  // ---------------------------------------------------------------- token flow
  if (tokenBase) {
    const t = await openPage(browser, { width: 1280, height: 800 });
    await t.page.goto(tokenBase + '/');
    await t.page.waitForSelector('#list-message:has-text("No images yet")');
    await t.page.setInputFiles('#upload-file', goodPng);
    await t.page.click('#upload-submit');
    await t.page.waitForSelector('#token[open]');
    assert.match(await t.page.textContent('#token-message'), /needs an upload token/);
    await t.page.fill('#token-input', 'wrong');
    await t.page.click('#token-ok');
    await t.page.waitForFunction(() => document.getElementById('token').open && /not valid/.test(document.getElementById('token-message').textContent));
    await t.page.fill('#token-input', token);
    await t.page.click('#token-ok');
    await t.page.waitForFunction(() => { const v = window.gigatile.view(); return v && v.id.startsWith('uploads/'); }, null, { timeout: 30000 });
    await settled(t.page);
    assert.equal(await t.page.evaluate(() => sessionStorage.getItem('gigatile.uploadToken')), token);
    assert.equal(await t.page.evaluate(() => localStorage.getItem('gigatile.uploadToken')), null, 'the token is kept for the session only');
    assert.deepEqual(unexpected(t.problems, [
      new RegExp(`^HTTP 401: ${tokenBase}/api/upload$`),
      new RegExp(`^HTTP 401: ${tokenBase}/api/upload$`),
      /^console: Failed to load resource: the server responded with a status of 401/,
      /^console: Failed to load resource: the server responded with a status of 401/,
    ]), []);
    await t.context.close();
    step('token asked for, refused, then accepted');
  }
  step('all passed');
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
