// The page's relay pool with two real relays that peer: the page served by A learns B from A's
// signed records, measures both from the browser, ranks them, and keeps the trader's exclusion
// of B across a reload (IndexedDB) until the trader takes it back, after which it holds a
// standby reservation on B and is reachable through both. Then A is killed: the standby on B
// takes over at once, and the page says what happened. And with three relays at
// different distances (delaying forwarders: this kernel has no netem), the page ranks them in
// the order of their distance and holds its reservations on the two nearest.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HOST, launchBrowser, openPanel, relayPorts, reserved, startDelay, startRelay, stopRelay, tempDir } from './harness.mjs';

const OUT = join(import.meta.dirname, 'output');
mkdirSync(OUT, { recursive: true });

let browser;
const relays = [];
const delays = [];
after(async () => {
  await browser?.close();
  for (const r of relays) await stopRelay(r);
  for (const d of delays) d.close();
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

  // Taken back: ranked and measured again, and the page holds a standby reservation there: it
  // is reachable through both relays.
  await page.click(`${row(idB)} [data-choose=auto]`);
  await page.waitForSelector(`${row(idB)}[data-state=usable]`, { timeout: 30000 });
  await page.waitForSelector(measured(idB), { timeout: 30000 });
  await page.waitForSelector(`${row(idB)}[data-standby=true]`, { timeout: 30000 });
  assert.match(await page.textContent(row(idB)), /standby/);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=reachable-addr]').length === 2, null, { timeout: 30000 });
  const reachable = await page.$$eval('[data-testid=reachable-addr]', (els) => els.map((e) => e.textContent));
  assert.match(reachable[0], new RegExp(`/p2p/${idA}/p2p-circuit/p2p/`));
  assert.match(reachable[1], new RegExp(`/p2p/${idB}/p2p-circuit/p2p/`));
  await page.screenshot({ path: join(OUT, 'relays-standby.png'), fullPage: true });

  // A dies (SIGKILL: no goodbye): the standby on B takes over, and the page says so.
  const killed = Date.now();
  await stopRelay(a, 'SIGKILL');
  const moved = `[data-testid=relay-failover][data-from="${idA}"][data-to="${idB}"]`;
  await page.waitForSelector(moved, { timeout: 30000 });
  const movedAfter = Date.now() - killed;
  await page.waitForSelector(reserved, { timeout: 30000 });
  console.log(`# page: relay killed → the standby on the other relay takes over in ${movedAfter} ms, reserved there in ${Date.now() - killed} ms`);
  assert.match(await page.textContent(moved), /Moved from relay .* to relay .* when it was lost \(1 move this visit\)/);
  await page.waitForSelector(`${row(idB)}[data-linked=true]`, { timeout: 10000 });
  await page.screenshot({ path: join(OUT, 'relays-failover.png'), fullPage: true });
});

test('the page ranks relays 5, 40 and 120 ms away in that order, measured through the delay', async () => {
  const far = [];
  for (const [name, oneWayMs] of [['near', 5], ['middle', 40], ['far', 120]]) {
    const delay = await startDelay(oneWayMs);
    delays.push(delay);
    // It announces only the forwarder's address: pages reach it through the delay.
    const relay = await startRelay(tempDir(), await relayPorts(), [...records, '--relay-name', name, '--federation-accept', 'any', '--external-addr', `/ip4/127.0.0.1/tcp/${delay.port}/ws`], undefined, HOST);
    relays.push(relay);
    delay.target = relay.ports.ws;
    far.push({ name, oneWayMs, id: peerIdOf(relay), tcp: `/ip4/127.0.0.1/tcp/${relay.ports.tcp}/p2p/${peerIdOf(relay)}` });
  }
  // The serving relay peers with the three directly: the relays' own links are not measured.
  const serving = await startRelay(tempDir(), await relayPorts(), [...records, '--relay-name', 'serving', ...far.flatMap((f) => ['--peer', f.tcp])], undefined, HOST);
  relays.push(serving);
  browser ??= await launchBrowser();
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(serving.url);
  await page.waitForSelector(reserved, { timeout: 30000 });
  await openPanel(page, 'relay');
  const row = (id) => `[data-testid=relay-row][data-relay="${id}"]`;
  const started = Date.now();
  for (const f of far) {
    await page.waitForSelector(`${row(f.id)} [data-testid=relay-rtt]:has-text(" ms")`, { timeout: 90000 });
  }
  const seen = [];
  for (const f of far) {
    const rank = Number(await page.getAttribute(row(f.id), 'data-rank'));
    const rtt = Number((await page.textContent(`${row(f.id)} [data-testid=relay-rtt]`)).match(/([\d.,]+) ms/)[1].replace(',', ''));
    seen.push({ name: f.name, rank, rtt });
    // A round trip takes at least the two delays.
    assert.ok(rtt >= 2 * f.oneWayMs, `${f.name}: ${rtt} ms is under the ${2 * f.oneWayMs} ms its delay makes`);
  }
  console.log(`# page: three relays measured in ${Date.now() - started} ms: ${seen.map((s) => `${s.name} ${s.rtt} ms, rank ${s.rank}`).join('; ')}`);
  assert.ok(seen[0].rank < seen[1].rank && seen[1].rank < seen[2].rank, `ranked out of the order of distance: ${JSON.stringify(seen)}`);
  // Reserved on the two nearest: the serving relay (in use) and the near one (the standby).
  await page.waitForSelector(`${row(far[0].id)}[data-standby=true]`, { timeout: 30000 });
  for (const f of far.slice(1)) assert.equal(await page.getAttribute(row(f.id), 'data-standby'), 'false', `${f.name} holds the standby`);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=reachable-addr]').length === 2, null, { timeout: 30000 });
  await page.screenshot({ path: join(OUT, 'relays-ranked.png'), fullPage: true });
});
