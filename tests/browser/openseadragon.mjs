// OpenSeadragon (node_modules, the version clients use) opens one image through each protocol
// asked for (Deep Zoom, Zoomify, IIIF 3) from a page on another origin (a server of its own, on
// loopback too, since Chromium blocks a public page's requests to loopback), so CORS is
// exercised.
// For each: wait until every tile in view is loaded, screenshot, zoom in, wait, screenshot.
// Asserts: no console errors, page errors or failed requests; no blank view; each view matches
// the source (average colour of each cell of a grid over the visible image, against a
// reference downscale of the source); and every protocol's views match the first one's.
//
// usage: node tests/browser/openseadragon.mjs BASE ARTIFACTS_DIR ID WIDTH HEIGHT REFERENCE_PNG PROTOCOLS
//        (PROTOCOLS: comma-separated, of dzi, zoomify, iiif)
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { launch, openPage } from './browser.mjs';

const [base, artifacts, id, widthArg, heightArg, referencePng, protocolsArg] = process.argv.slice(2);
const width = Number(widthArg);
const height = Number(heightArg);
const protocols = protocolsArg.split(',').filter(Boolean);
const encodedId = encodeURIComponent(id);
const VIEW = { width: 960, height: 640 };
const GRID = { cols: 8, rows: 6 };
// Largest mean difference per channel, 0-255: a cell against the reference, and a whole view
// against the first protocol's.
const CELL_TOLERANCE = 12;
const VIEW_TOLERANCE = 4;

const tileSources = {
  dzi: `${base}/dzi/${encodedId}.dzi`,
  zoomify: { type: 'zoomifytileservice', width, height, tilesUrl: `${base}/zoomify/${encodedId}/` },
  iiif: `${base}/iiif/3/${encodedId}/info.json`,
};

const html = `<!doctype html><html><head><style>
  html, body { margin: 0; background: #000; }
  #viewer { width: ${VIEW.width}px; height: ${VIEW.height}px; }
</style></head><body><div id="viewer"></div>
<script src="/openseadragon.min.js"></script></body></html>`;
const osd = fs.readFileSync('node_modules/openseadragon/build/openseadragon/openseadragon.min.js');

/** Serves the page and OpenSeadragon on 127.0.0.1 (another origin than the image server). */
async function pageServer() {
  const server = http.createServer((req, res) => {
    const script = req.url === '/openseadragon.min.js';
    res.writeHead(200, { 'content-type': script ? 'text/javascript' : 'text/html' });
    res.end(script ? osd : html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function fail(message) {
  throw new Error(message);
}

/** Waits until the viewer has drawn every tile the current view needs. */
async function waitLoaded(page) {
  // Let a viewport change reach the viewer's update loop before asking.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.waitForFunction(() => {
    const item = window.viewer.world.getItemAt(0);
    return item && item.getFullyLoaded() && !window.viewer.world.needsDraw();
  }, null, { timeout: 60000 });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/**
 * Screenshots the viewer and measures it in the page: the mean colour of each grid cell over
 * the part of the image in view, the reference's mean over the same part of the image, the
 * spread of the view's pixels, and the raw pixels (for comparing protocols).
 */
async function capture(page, file) {
  const png = await page.locator('#viewer').screenshot({ path: file });
  return page.evaluate(async ({ shot, grid }) => {
    const pixels = async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = canvas.getContext('2d');
      ctx.drawImage(bitmap, 0, 0);
      return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    };
    const mean = (img, x0, y0, x1, y1) => {
      const sum = [0, 0, 0];
      let n = 0;
      for (let y = Math.floor(y0); y < Math.ceil(y1); y++) {
        for (let x = Math.floor(x0); x < Math.ceil(x1); x++) {
          const i = (y * img.width + x) * 4;
          for (let c = 0; c < 3; c++) sum[c] += img.data[i + c];
          n++;
        }
      }
      return sum.map((s) => s / Math.max(n, 1));
    };
    const view = await pixels(shot);
    const reference = window.reference;
    const item = window.viewer.world.getItemAt(0);
    const size = item.getContentSize();
    // The image's corners in the view, clipped to the view, and back in image pixels.
    const OSD = window.OpenSeadragon;
    const topLeft = item.imageToViewerElementCoordinates(new OSD.Point(0, 0));
    const bottomRight = item.imageToViewerElementCoordinates(new OSD.Point(size.x, size.y));
    const vx0 = Math.max(0, topLeft.x);
    const vy0 = Math.max(0, topLeft.y);
    const vx1 = Math.min(view.width, bottomRight.x);
    const vy1 = Math.min(view.height, bottomRight.y);
    const toImage = (x, y) => item.viewerElementToImageCoordinates(new OSD.Point(x, y));
    const cells = [];
    for (let row = 0; row < grid.rows; row++) {
      for (let col = 0; col < grid.cols; col++) {
        // The cell, less a margin of a tenth on each side (edges are where resamplers differ).
        const cw = (vx1 - vx0) / grid.cols;
        const ch = (vy1 - vy0) / grid.rows;
        const x0 = vx0 + (col + 0.1) * cw;
        const y0 = vy0 + (row + 0.1) * ch;
        const x1 = vx0 + (col + 0.9) * cw;
        const y1 = vy0 + (row + 0.9) * ch;
        const a = toImage(x0, y0);
        const b = toImage(x1, y1);
        const sx = reference.width / size.x;
        const sy = reference.height / size.y;
        cells.push({
          view: mean(view, x0, y0, x1, y1),
          reference: mean(reference, a.x * sx, a.y * sy, b.x * sx, b.y * sy),
        });
      }
    }
    // The spread: the largest standard deviation of a channel over the view.
    const sum = [0, 0, 0];
    const sq = [0, 0, 0];
    for (let i = 0; i < view.data.length; i += 4) {
      for (let c = 0; c < 3; c++) {
        sum[c] += view.data[i + c];
        sq[c] += view.data[i + c] ** 2;
      }
    }
    const n = view.data.length / 4;
    const spread = Math.max(...sum.map((s, c) => Math.sqrt(sq[c] / n - (s / n) ** 2)));
    return { cells, spread, visible: [vx0, vy0, vx1, vy1], data: Array.from(view.data) };
  }, { shot: png.toString('base64'), grid: GRID });
}

function check(protocol, name, shot) {
  const [x0, y0, x1, y1] = shot.visible;
  if (x1 - x0 < VIEW.width / 2 && y1 - y0 < VIEW.height / 2) {
    fail(`${protocol} ${name}: the image covers only ${x1 - x0}×${y1 - y0} px of the view`);
  }
  if (shot.spread < 10) fail(`${protocol} ${name}: the view is blank (spread ${shot.spread.toFixed(1)})`);
  let worst = 0;
  for (const cell of shot.cells) {
    const d = cell.view.reduce((s, v, c) => s + Math.abs(v - cell.reference[c]), 0) / 3;
    worst = Math.max(worst, d);
  }
  console.log(`${protocol} ${name}: spread ${shot.spread.toFixed(1)}, worst cell difference ${worst.toFixed(1)}`);
  if (worst > CELL_TOLERANCE) {
    fail(`${protocol} ${name}: a cell differs from the source by ${worst.toFixed(1)} (> ${CELL_TOLERANCE})`);
  }
}

function compare(a, b, what) {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) d += Math.abs(a[i + c] - b[i + c]);
    n += 3;
  }
  const mean = d / n;
  console.log(`${what}: mean difference ${mean.toFixed(2)}`);
  if (mean > VIEW_TOLERANCE) fail(`${what}: views differ by ${mean.toFixed(2)} (> ${VIEW_TOLERANCE})`);
}

const pages = await pageServer();
const pageUrl = `http://127.0.0.1:${pages.address().port}/`;
const browser = await launch();
try {
  const shots = {};
  for (const protocol of protocols) {
    const source = tileSources[protocol] || fail(`unknown protocol ${protocol}`);
    const { context, page, problems } = await openPage(browser, { width: 1100, height: 800 });
    await page.goto(pageUrl);
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = canvas.getContext('2d');
      ctx.drawImage(bitmap, 0, 0);
      window.reference = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    }, fs.readFileSync(referencePng).toString('base64'));
    await page.evaluate((tileSource) => {
      window.viewer = window.OpenSeadragon({
        id: 'viewer',
        tileSources: tileSource,
        crossOriginPolicy: 'Anonymous',
        showNavigationControl: false,
        animationTime: 0,
        blendTime: 0,
        immediateRender: false,
      });
      window.openFailed = null;
      window.viewer.addHandler('open-failed', (e) => { window.openFailed = e.message || 'open failed'; });
    }, source);
    await page.waitForFunction(() => window.openFailed || window.viewer.world.getItemCount() > 0, null, { timeout: 30000 });
    const openFailed = await page.evaluate(() => window.openFailed);
    if (openFailed) fail(`${protocol}: ${openFailed}; problems: ${problems.join('; ')}`);
    await waitLoaded(page);
    const home = await capture(page, path.join(artifacts, `${protocol}-home.png`));
    check(protocol, 'home', home);

    // Zoom in fourfold right of centre, where the photo's disc has a hard edge.
    await page.evaluate(() => {
      const OSD = window.OpenSeadragon;
      const viewport = window.viewer.viewport;
      const bounds = viewport.getHomeBounds();
      viewport.zoomTo(viewport.getHomeZoom() * 4, null, true);
      viewport.panTo(new OSD.Point(bounds.x + bounds.width * 0.75, bounds.y + bounds.height * 0.5), true);
    });
    await waitLoaded(page);
    const zoomed = await capture(page, path.join(artifacts, `${protocol}-zoomed.png`));
    check(protocol, 'zoomed', zoomed);

    if (problems.length) fail(`${protocol}: ${problems.join('\n')}`);
    shots[protocol] = { home, zoomed };
    await context.close();
  }
  const [first, ...rest] = protocols;
  for (const protocol of rest) {
    for (const view of ['home', 'zoomed']) {
      compare(shots[first][view].data, shots[protocol][view].data, `${protocol} vs ${first}, ${view}`);
    }
  }
  console.log(`OpenSeadragon: ${protocols.join(', ')} ok`);
} finally {
  await browser.close();
  pages.close();
}
