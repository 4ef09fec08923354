// Two real Chromium pages served by the real relay: both reserve, A messages B through a
// circuit, the relay restarts and both pages reconnect by themselves.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  EXPECT_TRANSPORT, launchBrowser, openPanel, relayPorts, reserved, startRelay, stopRelay, tempDir, twoReservedPages,
} from './harness.mjs';

const OUT = join(import.meta.dirname, 'output');
mkdirSync(OUT, { recursive: true });

let browser;
const relays = [];
after(async () => {
  await browser?.close();
  for (const r of relays) await stopRelay(r);
});

test('two pages reserve, message each other through the relay, and survive a relay restart', async () => {
  const dataDir = tempDir();
  const ports = await relayPorts();
  let relay = await startRelay(dataDir, ports);
  relays.push(relay);
  browser = await launchBrowser();
  const [pageA, pageB] = await twoReservedPages(browser, relay.url);
  for (const p of [pageA, pageB]) {
    assert.equal(await p.getAttribute('[data-testid=relay-state]', 'data-transport'), EXPECT_TRANSPORT);
  }
  await pageA.waitForSelector('[data-testid=relay-rtt]:not(:text("—"))', { timeout: 15000 });

  const idA = (await pageA.textContent('[data-testid=peer-id]')).trim();
  const idB = (await pageB.textContent('[data-testid=peer-id]')).trim();
  assert.match(idA, /^12D3KooW/);
  assert.notEqual(idA, idB);

  // Both proved themselves with their identity key (the relay's default).
  for (const p of [pageA, pageB]) {
    const auth = p.locator('[data-testid=auth-state]');
    assert.equal(await auth.getAttribute('data-state'), 'granted');
    assert.equal(await auth.getAttribute('data-level'), 'authenticated');
    assert.equal(await auth.getAttribute('data-method'), 'identity');
  }

  // The identity survives a reload (IndexedDB), and so does the relay's token: the reloaded
  // page presents it instead of answering a new challenge.
  await pageA.reload();
  await pageA.waitForSelector(reserved, { timeout: 30000 });
  assert.equal((await pageA.textContent('[data-testid=peer-id]')).trim(), idA);
  assert.equal(await pageA.getAttribute('[data-testid=auth-state]', 'data-method'), 'token');

  // Each page lists the other (in its peers panel); A messages B through the relay.
  await openPanel(pageA, 'peers');
  await openPanel(pageB, 'peers');
  await pageA.waitForSelector(`[data-testid=peer][data-peer="${idB}"]`, { timeout: 15000 });
  await pageB.waitForSelector(`[data-testid=peer][data-peer="${idA}"]`, { timeout: 15000 });
  const row = pageA.locator(`[data-testid=peer][data-peer="${idB}"]`);
  await row.locator('[data-testid=message-input]').fill('hello B, from A');
  await row.locator('[data-testid=send]').click();
  const received = pageB.locator(`[data-testid=received][data-from="${idA}"] [data-testid=text]`);
  await received.waitFor({ timeout: 15000 });
  assert.equal(await received.textContent(), 'hello B, from A');
  await pageA.waitForSelector('[data-testid=sent][data-delivery=delivered]', { timeout: 15000 });
  await pageA.screenshot({ path: join(OUT, 'page-a.png'), fullPage: true });
  await pageB.screenshot({ path: join(OUT, 'page-b.png'), fullPage: true });

  // Relay goes away: both pages say so; it comes back on the same ports: both reserve again.
  assert.equal(await stopRelay(relay), 0, 'relay exits cleanly on SIGTERM');
  await Promise.all([
    pageA.waitForSelector('[data-testid=relay-state][data-state=error]', { timeout: 30000 }),
    pageB.waitForSelector('[data-testid=relay-state][data-state=error]', { timeout: 30000 }),
  ]);
  relay = await startRelay(dataDir, relay.ports);
  relays.push(relay);
  await Promise.all([pageA.waitForSelector(reserved, { timeout: 30000 }), pageB.waitForSelector(reserved, { timeout: 30000 })]);
  // And messaging works again after the reconnect.
  await pageB.waitForSelector(`[data-testid=peer][data-peer="${idA}"]`, { timeout: 15000 });
  const rowB = pageB.locator(`[data-testid=peer][data-peer="${idA}"]`);
  await rowB.locator('[data-testid=message-input]').fill('back again');
  await rowB.locator('[data-testid=send]').click();
  await pageA.locator(`[data-testid=received][data-from="${idB}"] [data-testid=text]:text("back again")`).waitFor({ timeout: 15000 });
  await pageA.screenshot({ path: join(OUT, 'page-a-after-restart.png'), fullPage: true });
});
