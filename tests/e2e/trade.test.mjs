// Trading between two real Chromium pages through the real relay: A makes an order, B sees it,
// B takes part of it, both pages show the agreed trade, and B's book shows what is left.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  EXPECT_TRANSPORT, follow, launchBrowser, openPanel, relayPorts, reserved, startRelay, stopRelay,
  tempDir, twoReservedPages,
} from './harness.mjs';

const OUT = join(import.meta.dirname, 'output');
mkdirSync(OUT, { recursive: true });
const PAIR = 'RUNE:ETOETEST/BTC';

let browser;
let relay;
let pages = [];
after(async () => {
  // On failure, what the pages showed is the first thing to look at.
  for (const [i, p] of pages.entries()) {
    await p.screenshot({ path: join(OUT, `trade-last-${i}.png`), fullPage: true }).catch(() => {});
  }
  if (relay) {
    // The relay's view (orders accepted and refused, connections reset) for a post-mortem.
    const metrics = await fetch(new URL('/metrics', relay.url)).then((r) => r.text()).catch((e) => String(e));
    writeFileSync(join(OUT, 'trade-last-relay-metrics.txt'), metrics);
  }
  await browser?.close();
  if (relay) await stopRelay(relay);
});

test('make in A, see in B, B takes part, both agree, A\'s remainder updates in B', async () => {
  relay = await startRelay(tempDir(), await relayPorts());
  browser = await launchBrowser();
  const [pageA, pageB] = await twoReservedPages(browser, relay.url);
  pages = [pageA, pageB];
  for (const p of pages) {
    assert.equal(await p.getAttribute('[data-testid=relay-state]', 'data-transport'), EXPECT_TRANSPORT);
  }
  // A pair the rules refuse gets a reason, and what was typed stays to be corrected (the page
  // re-renders to show the reason; a field that Yew owns would come back empty).
  await pageA.fill('[data-testid=pair-input]', 'RUNE:ETOETEST');
  await pageA.click('[data-testid=pair-follow]');
  await pageA.waitForSelector('[data-testid=pair-error]');
  assert.equal(await pageA.inputValue('[data-testid=pair-input]'), 'RUNE:ETOETEST');
  await follow(pageA, PAIR);
  await follow(pageB, PAIR);

  // The form refuses a bad price with a reason, then A places a valid order.
  await pageA.selectOption('[data-testid=order-side]', 'sell');
  await pageA.fill('[data-testid=order-amount]', '1000');
  await pageA.fill('[data-testid=order-price]', '0.123456789');
  assert.equal(await pageA.inputValue('[data-testid=order-ttl]'), '60');
  await pageA.fill('[data-testid=order-ttl]', '30');
  await pageA.click('[data-testid=order-place]');
  assert.match(await pageA.textContent('[data-testid=order-error]'), /price/);
  // Showing the reason kept every field as typed, the expiry too.
  assert.equal(await pageA.inputValue('[data-testid=order-ttl]'), '30');
  assert.equal(await pageA.inputValue('[data-testid=order-price]'), '0.123456789');
  await pageA.fill('[data-testid=order-price]', '0.5');
  await pageA.click('[data-testid=order-place]');
  const mine = pageA.locator('[data-testid=my-order]');
  await mine.waitFor({ timeout: 15000 });
  const orderId = await mine.getAttribute('data-order');

  // B sees it, not as its own, and takes 400 of the 1000.
  const inB = pageB.locator(`[data-testid=book-order][data-order="${orderId}"]`);
  await pageB.waitForSelector(`[data-testid=book-order][data-order="${orderId}"][data-amount="1000"][data-mine="false"]`, { timeout: 15000 });
  await pageB.fill('[data-testid=take-amount]', '400');
  await inB.locator('[data-testid=take]').click();

  // Both pages show the same agreed trade.
  const agreedB = pageB.locator('[data-testid=trade][data-state=agreed]');
  const agreedA = pageA.locator('[data-testid=trade][data-state=agreed]');
  await agreedB.waitFor({ timeout: 20000 });
  await agreedA.waitFor({ timeout: 20000 });
  assert.equal(await agreedA.getAttribute('data-trade'), await agreedB.getAttribute('data-trade'));
  assert.equal(await agreedB.getAttribute('data-role'), 'taker');
  assert.equal(await agreedA.getAttribute('data-role'), 'maker');
  assert.equal(await agreedB.getAttribute('data-amount'), '400');
  assert.match(await agreedB.textContent(), /agreed — awaiting settlement/);
  assert.match(await agreedB.textContent(), /buy 400 RUNE:ETOETEST for 200 sat \(0\.000002 BTC\)/);

  // A republished what is left; B's book shows 600.
  await pageB.waitForSelector(`[data-testid=book-order][data-order="${orderId}"][data-amount="600"]`, { timeout: 15000 });
  await pageA.screenshot({ path: join(OUT, 'trade-maker.png'), fullPage: true });
  await pageB.screenshot({ path: join(OUT, 'trade-taker.png'), fullPage: true });

  // B's own metrics count the trade, and export as Prometheus text.
  await openPanel(pageB, 'metrics');
  await pageB.click('[data-testid=metrics-toggle]');
  const text = await pageB.textContent('[data-testid=metrics-text]');
  assert.match(text, /darkswap_client_trades\{state="agreed"\} 1/);
  assert.match(text, /darkswap_client_relay_state\{state="reserved"\} 1/);
  assert.match(text, /darkswap_client_auth_level\{level="authenticated"\} 1/);
  assert.match(text, /darkswap_client_orders_seen\{pair="RUNE:ETOETEST\/BTC"\} 1/);

  // A reloads: its identity, its order (republished, same id, 600 left) and its trade are back.
  await pageA.reload();
  await pageA.waitForSelector(reserved, { timeout: 30000 });
  await follow(pageA, PAIR);
  await pageA.waitForSelector(`[data-testid=my-order][data-order="${orderId}"]`, { timeout: 15000 });
  await pageA.waitForSelector('[data-testid=trade][data-state=agreed]', { timeout: 15000 });
  await pageB.waitForSelector(`[data-testid=book-order][data-order="${orderId}"][data-amount="600"]`, { timeout: 15000 });

  // A cancels: the order leaves B's book.
  await pageA.click('[data-testid=my-order] [data-testid=cancel]');
  await pageB.waitForSelector(`[data-testid=book-order][data-order="${orderId}"]`, { state: 'detached', timeout: 15000 });
});
