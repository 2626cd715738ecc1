// The viewer names every image as its user named it: for each {id, name}, the list item's
// name and tooltip, and once opened the page's heading and document title, are `name`; an
// upload's stored name appears nowhere in the page's text or tooltips; a name made of markup
// is shown as text (no element made from it, no script run).
//
// usage: node tests/browser/names.mjs BASE NAMES_JSON   (NAMES_JSON: [{id, name}])
import { launch, openPage } from './browser.mjs';

const [base, namesJson] = process.argv.slice(2);
const names = JSON.parse(namesJson);

const browser = await launch();
const failures = [];
const check = (ok, message) => { if (!ok) failures.push(message); };
try {
  const { page, problems } = await openPage(browser);
  page.on('dialog', (d) => { failures.push(`a dialog opened: ${d.message()}`); d.dismiss(); });
  await page.goto(`${base}/`);
  for (const { id, name } of names) {
    const button = page.locator(`#images .item[data-id="${id}"]`);
    await button.waitFor({ timeout: 30000 });
    check(await button.locator('.item-name').textContent() === name, `${id}: listed as ${await button.locator('.item-name').textContent()}`);
    if (id.startsWith('uploads/')) check(await button.getAttribute('title') === name, `${id}: tooltip ${await button.getAttribute('title')}`);
    await button.click();
    await page.waitForFunction((n) => document.getElementById('title').textContent === n, name, { timeout: 30000 })
      .catch(() => failures.push(`${id}: heading is not ${name}`));
    check(await page.title() === `${name} · gigatile`, `${id}: document title ${await page.title()}`);
  }
  const stored = names.filter((n) => n.id.startsWith('uploads/')).map((n) => n.id.split('/').pop());
  const shown = await page.evaluate(() => [
    document.body.innerText,
    document.title,
    ...[...document.querySelectorAll('[title], [aria-label]')].flatMap((e) => [e.title, e.getAttribute('aria-label') || '']),
  ].join('\n'));
  for (const s of stored) check(!shown.includes(s), `the stored name ${s} is shown`);
  check(await page.locator('img[src="x"]').count() === 0, 'an element was made from a name');
  check(problems.length === 0, `problems: ${problems.join(' | ')}`);
  console.log(`names: ${names.length} images shown by their names`);
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(failures.join('\n'));
  process.exit(1);
}
