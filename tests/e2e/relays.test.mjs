// The page's relay pool with two real relays that peer: the page served by A learns B from A's
// signed records, measures both from the browser, ranks them, and keeps the trader's exclusion
// of B across a reload (IndexedDB) until the trader takes it back. Then A is killed: the page
// moves to B at once, is reserved there, and says what happened.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HOST, launchBrowser, openPanel, relayPorts, reserved, startRelay, stopRelay, tempDir } from './harness.mjs';

const OUT = join(import.meta.dirname, 'output');
mkdirSync(OUT, { recursive: true });

let browser;
const relays = [];
after(async () => {
  await browser?.close();
  for (const r of relays) await stopRelay(r);
});

const peerIdOf = (relay) => relay.output.match(/^peer id: (\S+)$/m)[1];
const records = ['--record-announce-secs', '1', '--record-ttl-secs', '120'];

test('the page lists the relays its relay knows, measures them, keeps an exclusion, and moves to another when its relay dies', async () => {
  // Both on the loopback address only: their records then list only loopback addresses,
  // which a page dials over WebSocket (this file runs in the loopback stage; Chromium's WebRTC
  // to this machine's own interface address outside a test namespace is not dependable).
  const b = await startRelay(tempDir(), await relayPorts(), [...records, '--relay-name', 'relay B', '--federation-accept', 'any'], undefined, HOST);
  relays.push(b);
  const bTcp = b.output.match(/^address: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/m)[1];
  const a = await startRelay(tempDir(), await relayPorts(), [...records, '--relay-name', 'relay A', '--peer', bTcp], undefined, HOST);
  relays.push(a);
  const [idA, idB] = [peerIdOf(a), peerIdOf(b)];

  browser = await launchBrowser();
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(a.url);
  await page.waitForSelector(reserved, { timeout: 30000 });
  await openPanel(page, 'relay');

  const row = (id) => `[data-testid=relay-row][data-relay="${id}"]`;
  const measured = (id) => `${row(id)} [data-testid=relay-rtt]:has-text(" ms")`;
  // A learns B within an announce period; the page asks A for its records when it is let in
  // and then every 30 s: B appears, and the browser measures it.
  await page.waitForSelector(measured(idA), { timeout: 30000 });
  await page.waitForSelector(measured(idB), { timeout: 90000 });
  assert.match(await page.textContent(row(idA)), /relay A/);
  assert.match(await page.textContent(row(idA)), /served this page/);
  assert.match(await page.textContent(row(idA)), /in use now/);
  assert.match(await page.textContent(row(idB)), /relay B/);
  for (const id of [idA, idB]) {
    assert.match(await page.getAttribute(row(id), 'data-rank'), /^[12]$/);
    assert.equal(await page.getAttribute(row(id), 'data-state'), 'usable');
  }
  await page.screenshot({ path: join(OUT, 'relays.png'), fullPage: true });

  // Excluded: unranked, and still so after a reload.
  await page.click(`${row(idB)} [data-choose=exclude]`);
  await page.waitForSelector(`${row(idB)}[data-state=excluded]`, { timeout: 10000 });
  assert.equal(await page.getAttribute(row(idB), 'data-rank'), '');
  await page.reload();
  await page.waitForSelector(reserved, { timeout: 30000 });
  await openPanel(page, 'relay');
  await page.waitForSelector(`${row(idB)}[data-state=excluded]`, { timeout: 30000 });

  // Taken back: ranked and measured again.
  await page.click(`${row(idB)} [data-choose=auto]`);
  await page.waitForSelector(`${row(idB)}[data-state=usable]`, { timeout: 30000 });
  await page.waitForSelector(measured(idB), { timeout: 30000 });

  // A dies (SIGKILL: no goodbye): the page moves to B, reserves there, and says so.
  const killed = Date.now();
  await stopRelay(a, 'SIGKILL');
  const moved = `[data-testid=relay-failover][data-from="${idA}"][data-to="${idB}"]`;
  await page.waitForSelector(moved, { timeout: 30000 });
  await page.waitForSelector(reserved, { timeout: 30000 });
  console.log(`# page: relay killed → reserved on the other relay in ${Date.now() - killed} ms`);
  assert.match(await page.textContent(moved), /Moved from relay .* to relay .* when it was lost \(1 move this visit\)/);
  await page.waitForSelector(`${row(idB)}[data-linked=true]`, { timeout: 10000 });
  await page.screenshot({ path: join(OUT, 'relays-failover.png'), fullPage: true });
});
