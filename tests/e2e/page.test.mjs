// The page as a trader meets it, in real Chromium against the real relay:
// - at a phone's, a laptop's and a wide screen's size the first screen holds the order book and
//   the order form, nothing scrolls sideways, and axe-core finds no serious or critical
//   accessibility violation, with every detail panel closed and with each one open;
// - the order form says what an order does as it is typed, and the book draws its depth;
// - amounts and prices are typed and shown in display units: "0.5" BTC on the wire is
//   50,000,000 sat in the other page's book, and the choice of BTC or sat is kept;
// - the book lists the trades makers report (signed) and charts their prices;
// - a maker whose tab is in the background hears that their order was taken: an alert on the
//   page, the count in the tab's title, and a browser notification; coming back clears the count.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  follow, launchBrowser, openPanel, relayPorts, reserved, startRelay, stopRelay, tempDir,
} from './harness.mjs';

const OUT = join(import.meta.dirname, 'output');
mkdirSync(OUT, { recursive: true });
const AXE = join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js');
const PAIR = 'RUNE:PAGETEST/BTC';
const VIEWPORTS = [
  { name: 'phone', width: 360, height: 740 },
  { name: 'laptop', width: 1280, height: 800 },
  { name: 'wide', width: 1920, height: 1080 },
];
const PANELS = ['relay', 'access', 'identity', 'peers', 'wallet', 'metrics', 'alerts'];

let browser;
let relay;
after(async () => {
  await browser?.close();
  if (relay) await stopRelay(relay);
});

async function started() {
  if (!relay) relay = await startRelay(tempDir(), await relayPorts());
  if (!browser) browser = await launchBrowser();
}

// A page in a context of its own (its own identity); page errors are collected.
async function openPage(options = {}, prepare = async () => {}) {
  const context = await browser.newContext(options);
  await prepare(context);
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => { page.errors.push(e.message); console.error('page error:', e.message); });
  await page.goto(relay.url);
  await page.waitForSelector(reserved, { timeout: 30000 });
  return page;
}

// axe-core's serious and critical findings, each as "rule: what, where".
async function violations(page) {
  // Evaluated through the DevTools protocol: the page's Content-Security-Policy admits no
  // script tag that is not the app's.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(readFileSync(AXE, 'utf8'));
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3),
    }));
  });
  return found
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}, at ${v.nodes.join('; ')}`);
}

test('the first screen holds the book and the form at three sizes, and axe-core finds nothing serious', async () => {
  await started();
  for (const vp of VIEWPORTS) {
    const page = await openPage({ viewport: { width: vp.width, height: vp.height } });
    if (vp === VIEWPORTS[0]) {
      // A pair that cannot settle on Bitcoin is marked; a runes-for-bitcoin pair is not.
      await follow(page, 'BTC/USDT');
      assert.match(await page.textContent('[data-testid=pair-no-settlement]'), /BTC\/USDT cannot settle on Bitcoin/);
    }
    await follow(page, PAIR);
    assert.equal(await page.$('[data-testid=pair-no-settlement]'), null);
    for (const id of ['book', 'order-form']) {
      const box = await page.locator(`#${id}`).boundingBox();
      assert.ok(box && box.y < vp.height - 40, `${vp.name}: #${id} starts at ${box?.y} px, below the first screen (${vp.height} px)`);
    }
    const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(sideways <= 0, `${vp.name}: the page scrolls sideways by ${sideways} px`);
    await page.screenshot({ path: join(OUT, `page-${vp.name}.png`) });
    assert.deepEqual(await violations(page), [], `${vp.name}, panels closed`);
    for (const panel of PANELS) {
      await openPanel(page, panel);
      assert.deepEqual(await violations(page), [], `${vp.name}, ${panel} panel open`);
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});

// Headless Chromium never puts a tab in the background (document.hidden stays false whatever is
// in front), so the test tells the page it is hidden the way the browser would: document.hidden,
// document.visibilityState and a visibilitychange event.
async function setHidden(page, hidden) {
  await page.evaluate((hidden) => {
    if (hidden) {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    } else {
      delete document.hidden;
      delete document.visibilityState;
    }
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

test('a maker in a background tab hears that their order was taken', async () => {
  await started();
  const origin = new URL(relay.url).origin;
  // The maker allows notifications; each one the page raises is recorded on its way out.
  const maker = await openPage({}, async (context) => {
    await context.grantPermissions(['notifications'], { origin });
    await context.addInitScript(() => {
      const Real = window.Notification;
      window.shown = [];
      window.Notification = new Proxy(Real, {
        construct(target, args) {
          window.shown.push({ title: args[0], body: args[1]?.body });
          return Reflect.construct(target, args);
        },
      });
    });
  });
  const taker = await openPage();
  assert.equal(await maker.title(), 'DarkSwap');

  await openPanel(maker, 'alerts');
  await maker.check('[data-testid=alerts-notify]');
  await maker.waitForSelector('[data-testid=alerts-permission][data-permission=granted]');
  await maker.check('[data-testid=alerts-sound]');
  // The choice is kept in this browser.
  await maker.reload();
  await maker.waitForSelector(reserved, { timeout: 30000 });
  await openPanel(maker, 'alerts');
  assert.ok(await maker.isChecked('[data-testid=alerts-notify]'));
  assert.ok(await maker.isChecked('[data-testid=alerts-sound]'));

  await follow(maker, PAIR);
  await follow(taker, PAIR);
  await maker.selectOption('[data-testid=order-side]', 'sell');
  await maker.fill('[data-testid=order-amount]', '1000');
  await maker.fill('[data-testid=order-price]', '0.5');
  // The form says what the order does before anything is sent.
  assert.equal(await maker.textContent('[data-testid=order-total]'), 'You sell 1000 RUNE:PAGETEST and receive 500 sat (0.000005 BTC)');
  await maker.selectOption('[data-testid=order-side]', 'buy');
  assert.equal(await maker.textContent('[data-testid=order-total]'), 'You buy 1000 RUNE:PAGETEST and pay 500 sat (0.000005 BTC)');
  await maker.selectOption('[data-testid=order-side]', 'sell');
  await maker.click('[data-testid=order-place]');
  const orderId = await maker.locator('[data-testid=my-order]').getAttribute('data-order', { timeout: 15000 });
  await taker.waitForSelector(`[data-testid=book-order][data-order="${orderId}"]`, { timeout: 15000 });
  assert.match(await taker.getAttribute('[data-testid=depth-chart]', 'aria-label'), /0 bid levels holding 0, 1 ask levels holding 1000/);

  // The maker looks away; the taker takes 400.
  await setHidden(maker, true);
  await taker.fill('[data-testid=take-amount]', '400');
  await taker.locator(`[data-testid=book-order][data-order="${orderId}"] [data-testid=take]`).click();

  const toast = maker.locator('[data-testid=toast]');
  await toast.waitFor({ timeout: 20000 });
  assert.match(await toast.textContent(), /Your order was taken/);
  assert.match(await toast.textContent(), /sell 400 RUNE:PAGETEST for 200 sat \(0\.000002 BTC\) @ 0\.5 sat per RUNE:PAGETEST unit: agreed, awaiting settlement/);
  assert.equal(await maker.title(), '(1) DarkSwap');
  assert.match(await maker.textContent('[data-testid=panel-toggle][data-panel=alerts]'), /1 new/);
  const shown = await maker.evaluate(() => window.shown);
  assert.equal(shown.length, 1, JSON.stringify(shown));
  assert.equal(shown[0].title, 'Your order was taken');
  assert.match(shown[0].body, /sell 400 RUNE:PAGETEST/);

  // The market view: the maker's signed republish (600 left) tells every book of the page's
  // pair that 400 traded at 0.5; the taker's book learns it from gossip like any watcher's.
  const fill = taker.locator('[data-testid=tape-fill]');
  await fill.first().waitFor({ timeout: 15000 });
  assert.equal(await fill.count(), 1);
  assert.equal(await fill.getAttribute('data-amount'), '400');
  assert.match(await fill.textContent(), /bought0\.5400/);
  assert.match(await taker.getAttribute('[data-testid=price-chart]', 'aria-label'), /price chart: 1 trades, from 0\.5 to 0\.5 sat per RUNE:PAGETEST unit/);
  assert.deepEqual(await violations(taker), [], 'the book with its last trades');

  // The taker, looking at its page, sees its own alert and no count in the title.
  const takerToast = taker.locator('[data-testid=toast]');
  await takerToast.waitFor({ timeout: 20000 });
  assert.match(await takerToast.textContent(), /Your trade is agreed/);
  assert.equal(await taker.title(), 'DarkSwap');

  // The maker comes back: the count goes; the alert stays until dismissed.
  await setHidden(maker, false);
  await maker.waitForFunction(() => document.title === 'DarkSwap');
  await toast.locator('[data-testid=toast-dismiss]').click();
  await toast.waitFor({ state: 'detached' });
  await maker.screenshot({ path: join(OUT, 'page-alerts.png') });
  assert.deepEqual(maker.errors, []);
  assert.deepEqual(taker.errors, []);
});

test('a trader types 0.5 BTC and the book of the other page holds 50,000,000 sat', async () => {
  await started();
  const maker = await openPage();
  const watcher = await openPage();
  const USDT = 'BTC/USDT';
  await follow(maker, USDT);
  await follow(watcher, USDT);
  // Satoshis by default (rune prices are quoted in sats); the trader switches to BTC.
  assert.equal(await maker.inputValue('[data-testid=btc-unit]'), 'sat');
  await maker.selectOption('[data-testid=btc-unit]', 'btc');
  assert.equal(await maker.getAttribute('[data-testid=order-amount]', 'placeholder'), 'BTC');
  assert.equal(await maker.getAttribute('[data-testid=order-price]', 'placeholder'), 'USDT per BTC');
  await maker.selectOption('[data-testid=order-side]', 'sell');
  // More decimals than BTC has is refused, not rounded.
  await maker.fill('[data-testid=order-amount]', '0.000000001');
  await maker.fill('[data-testid=order-price]', '97000');
  await maker.click('[data-testid=order-place]');
  assert.match(await maker.textContent('[data-testid=order-error]'), /amount: at most 8 decimal places/);
  await maker.fill('[data-testid=order-amount]', '0.5');
  await maker.fill('[data-testid=order-price]', '97000');
  assert.equal(await maker.textContent('[data-testid=order-total]'), 'You sell 0.5 BTC (50000000 sat) and receive 48500 USDT');
  await maker.click('[data-testid=order-place]');
  const mine = maker.locator('[data-testid=my-order]');
  const orderId = await mine.getAttribute('data-order', { timeout: 15000 });
  assert.equal(await mine.getAttribute('data-amount'), '50000000');
  // On the wire, and in the other page's book, it is 50,000,000 sat at 97,000 USDT per BTC.
  const there = watcher.locator(`[data-testid=book-order][data-order="${orderId}"]`);
  await there.waitFor({ timeout: 15000 });
  assert.equal(await there.getAttribute('data-amount'), '50000000');
  assert.match(await there.textContent(), /0\.00097.*50000000/, 'the watcher reads sat (its default): USDT per sat, and sat');
  assert.match(await maker.locator(`[data-testid=book-order][data-order="${orderId}"]`).textContent(), /97000.*0\.5/);
  // The choice is kept in this browser.
  await maker.reload();
  await maker.waitForSelector(reserved, { timeout: 30000 });
  assert.equal(await maker.inputValue('[data-testid=btc-unit]'), 'btc');
  // A rune the chain has not described (this relay names no chain) is typed in its smallest
  // units, and the form says so.
  await follow(maker, PAIR);
  assert.match(await maker.textContent('[data-testid=order-units-unknown]'), /RUNE:PAGETEST is typed in its smallest units/);
  assert.equal(await maker.getAttribute('[data-testid=order-price]', 'placeholder'), 'BTC per RUNE:PAGETEST unit');
  assert.deepEqual(maker.errors, []);
  assert.deepEqual(watcher.errors, []);
});
