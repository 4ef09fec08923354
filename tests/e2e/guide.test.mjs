// The user guide's pictures (docs/GUIDE.md), taken from the real page against the real relay while
// two traders walk through what the guide describes: the first visit, following a pair, making an
// order, taking part of it, the agreed trade and its alert, cancelling, relay access and alerts.
// Every run takes them again, so the guide shows the page as it is; a step that no longer works
// fails here. Pictures are of the part of the page the guide talks about, at a laptop's size.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  launchBrowser, openPanel, relayPorts, reserved, startRelay, stopRelay, tempDir,
} from './harness.mjs';

const SHOTS = join(import.meta.dirname, '..', '..', 'docs', 'guide');
mkdirSync(SHOTS, { recursive: true });
const PAIR = 'RUNE:GUIDE•EXAMPLE/BTC';
const VIEWPORT = { width: 1280, height: 800 };

let browser;
let relay;
after(async () => {
  await browser?.close();
  if (relay) await stopRelay(relay);
});

async function trader() {
  const page = await (await browser.newContext({ viewport: VIEWPORT })).newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(relay.url);
  await page.waitForSelector(reserved, { timeout: 30000 });
  await page.waitForSelector('[data-testid=panel-toggle][data-panel=access][data-state=granted]', { timeout: 15000 });
  return page;
}

const shot = (locator, name) => locator.screenshot({ path: join(SHOTS, `${name}.png`) });

test('the guide\'s walk-through, pictured', async () => {
  relay = await startRelay(tempDir(), await relayPorts());
  browser = await launchBrowser();
  const maker = await trader();
  const taker = await trader();

  await shot(maker, '1-first-visit');

  for (const p of [maker, taker]) {
    await p.fill('[data-testid=pair-input]', PAIR);
    await p.click('[data-testid=pair-follow]');
    // Spacers are allowed when typing a rune and dropped from its name.
    await p.waitForSelector('[data-testid=book][data-pair="RUNE:GUIDEEXAMPLE/BTC"]', { timeout: 15000 });
  }

  await maker.selectOption('[data-testid=order-side]', 'sell');
  await maker.fill('[data-testid=order-amount]', '100000');
  await maker.fill('[data-testid=order-price]', '0.000025');
  await maker.fill('[data-testid=order-min-fill]', '10000');
  await maker.waitForSelector('[data-testid=order-total]');
  await shot(maker.locator('#order-form'), '2-make-an-order');
  await maker.click('[data-testid=order-place]');
  const orderId = await maker.locator('[data-testid=my-order]').getAttribute('data-order', { timeout: 15000 });
  await shot(maker.locator('#my-orders'), '3-my-orders');

  await taker.waitForSelector(`[data-testid=book-order][data-order="${orderId}"]`, { timeout: 15000 });
  await taker.fill('[data-testid=take-amount]', '40000');
  await shot(taker.locator('#book'), '4-the-book-and-a-take');
  await taker.locator(`[data-testid=book-order][data-order="${orderId}"] [data-testid=take]`).click();

  await taker.waitForSelector('[data-testid=trade][data-state=agreed]', { timeout: 20000 });
  await maker.waitForSelector('[data-testid=trade][data-state=agreed]', { timeout: 20000 });
  await maker.waitForSelector('[data-testid=toast]');
  await taker.waitForSelector(`[data-testid=book-order][data-order="${orderId}"][data-amount="60000"]`, { timeout: 15000 });
  // What the guide says about this trade.
  assert.match(await taker.textContent('[data-testid=trade]'), /buy 40000 RUNE:GUIDEEXAMPLE for 1 sat \(0\.00000001 BTC\) @ 0\.000025/);
  assert.match(await maker.textContent('[data-testid=order-total]'), /You sell 100000 RUNE:GUIDEEXAMPLE and receive 2 sat \(0\.00000002 BTC\)/);
  await shot(taker.locator('#trades'), '5-an-agreed-trade');
  // The book's last trades: the maker's signed republish told the taker's book what traded.
  await taker.waitForSelector('[data-testid=tape-fill][data-amount="40000"]', { timeout: 15000 });
  await shot(taker.locator('#book'), '10-last-trades');
  await shot(maker, '6-your-order-was-taken');

  await maker.click('[data-testid=my-order] [data-testid=cancel]');
  await taker.waitForSelector(`[data-testid=book-order][data-order="${orderId}"]`, { state: 'detached', timeout: 15000 });

  await openPanel(maker, 'access');
  await shot(maker.locator('[data-testid=panel][data-panel=access]'), '7-relay-access');
  await openPanel(maker, 'alerts');
  await shot(maker.locator('[data-testid=panel][data-panel=alerts]'), '8-alerts');
  await openPanel(maker, 'relay');
  await shot(maker.locator('[data-testid=panel][data-panel=relay]'), '9-relay');
});
