// CORS judged by the browser: from a page on another origin, fetch() a tile, an IIIF info.json
// and /api/images of each gigatile server (one per ALLOWED_ORIGIN form), once as a simple
// request and once with a header that needs a preflight, and compare what the browser let the
// page read with what the form allows. A blocked fetch must fail as CORS fails (a TypeError
// with a console message naming the CORS policy), not for another reason; an allowed one must
// give the body, and for the tile an exposed header (ETag).
//
// usage: node tests/browser/cors.mjs PAGE_ORIGIN CASES_JSON
//        (CASES_JSON: [{form, base, id, expect: {tile, info, api}}])
import { launch } from './browser.mjs';

const [pageOrigin, casesJson] = process.argv.slice(2);
const cases = JSON.parse(casesJson);

/** Whether a console error about `url` and the CORS policy arrives (within 5 s). */
async function corsMessage(messages, url) {
  for (let i = 0; i < 50; i += 1) {
    if (messages.some((m) => m.includes(url) && m.includes('CORS policy'))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const browser = await launch();
const failures = [];
try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  await page.goto(`${pageOrigin}/`);

  for (const { form, base, id, expect } of cases) {
    const urls = {
      tile: `${base}/api/images/${id}/tiles/0/0/0.jpg`,
      info: `${base}/iiif/3/${id}/info.json`,
      api: `${base}/api/images`,
    };
    for (const [route, routeUrl] of Object.entries(urls)) {
      for (const preflight of [false, true]) {
        // A URL of its own for each fetch, so that its console message is its own.
        const url = `${routeUrl}?fetch=${preflight ? 'preflighted' : 'simple'}`;
        const what = `${form}: ${route}${preflight ? ' (preflighted)' : ''}`;
        const result = await page.evaluate(async ({ url, route, preflight }) => {
          const init = preflight ? { headers: { 'X-Request-Id': 'cors-test' } } : {};
          try {
            const r = await fetch(url, init);
            const body = new Uint8Array(await r.arrayBuffer());
            let readable = false;
            if (route === 'tile') readable = body[0] === 0xff && body[1] === 0xd8 && r.headers.get('etag') !== null;
            else if (route === 'info') readable = JSON.parse(new TextDecoder().decode(body)).type === 'ImageService3';
            else readable = Array.isArray(JSON.parse(new TextDecoder().decode(body)));
            return { ok: r.ok && readable, status: r.status };
          } catch (e) {
            return { ok: false, error: `${e.name}: ${e.message}` };
          }
        }, { url, route, preflight });
        const allowed = expect[route];
        if (allowed && !result.ok) {
          failures.push(`${what}: should be readable, got ${JSON.stringify(result)}`);
        } else if (!allowed && (result.ok || result.error === undefined)) {
          failures.push(`${what}: should be blocked, got ${JSON.stringify(result)}`);
        } else if (!allowed && !result.error.startsWith('TypeError')) {
          failures.push(`${what}: failed, but not as CORS fails: ${result.error}`);
        } else if (!allowed && !(await corsMessage(consoleErrors, url))) {
          failures.push(`${what}: blocked without a CORS message: ${consoleErrors.join(' | ')}`);
        }
        console.log(`${what}: ${result.ok ? 'read' : 'blocked'} (${allowed ? 'allowed' : 'not allowed'})`);
      }
    }
  }
} finally {
  await browser.close();
}

if (failures.length > 0) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(`cors: ${cases.length} forms as configured`);
