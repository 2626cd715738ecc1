// The viewer when the server signs URLs (URL_SIGNING_KEYS): the thumbnails, the minimap and
// the tiles of the image shown go through the `s/{signature}/` prefix that the list and the
// metadata carry, every one loads, and the download counter still sees the tiles.
//
// node tests/browser/viewer_signed.mjs BASE_URL
import assert from 'node:assert/strict';
import { launch, openPage } from './browser.mjs';

const [base] = process.argv.slice(2);
assert.ok(base, 'usage: viewer_signed.mjs BASE_URL');

const browser = await launch();
try {
  const { page, problems } = await openPage(browser);
  const tiles = [];
  page.on('response', (r) => {
    const url = new URL(r.url()).pathname;
    if (url.includes('/tiles/')) tiles.push({ url, status: r.status() });
  });
  await page.goto(base + '/');
  // The first ready image opens by itself; wait until its view, thumbnail and minimap are drawn.
  await page.waitForFunction(() => {
    const v = window.gigatile && window.gigatile.view();
    if (!v || v.tilesLoading || v.moving) return false;
    const imgs = [...document.querySelectorAll('.image-tiles img.leaflet-tile, #images .item img, #minimap-image')];
    return imgs.length >= 3 && imgs.every((img) => img.complete && img.naturalWidth > 0);
  }, null, { timeout: 20000, polling: 100 });
  await page.waitForFunction(() => window.gigatile.downloads().transferred > 0, null, { timeout: 5000, polling: 100 });

  assert.ok(tiles.length >= 3, `too few tile requests: ${JSON.stringify(tiles)}`);
  for (const tile of tiles) {
    assert.match(tile.url, /^\/s\/[\w-]{43}\/api\/images\/[^/]+\/tiles\//, 'an unsigned tile URL');
    assert.equal(tile.status, 200, tile.url);
  }
  assert.deepEqual(problems, []);
  console.log(`[viewer signed] ${tiles.length} signed tile requests, all 200`);
} finally {
  await browser.close();
}
