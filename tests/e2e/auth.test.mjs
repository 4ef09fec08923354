// Relay access in a real Chromium page against a real relay that accepts only a shared key: the
// page is refused with the reason, a wrong key is refused, the right key entered in the page is
// granted and the page reserves; after a reload the kept token gets it straight back in.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  launchBrowser, openPanel, relayPorts, reserved, startRelay, stopRelay, tempDir,
} from './harness.mjs';

let browser;
let relay;
after(async () => {
  await browser?.close();
  if (relay) await stopRelay(relay);
});

const KEY = 'the operator gave me this key';

test('a shared-key relay: refused, wrong key refused, right key granted, token reused', async () => {
  const dir = tempDir();
  const keyFile = join(dir, 'shared.key');
  writeFileSync(keyFile, `${KEY}\n`);
  relay = await startRelay(join(dir, 'data'), await relayPorts(), [
    '--auth-identity', 'false', '--auth-shared-key-file', keyFile,
  ]);
  browser = await launchBrowser();
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(relay.url);

  const auth = '[data-testid=auth-state]';
  // The status bar says access was refused; its panel says why and takes the fix.
  await page.waitForSelector('[data-testid=panel-toggle][data-panel=access][data-state=refused]', { timeout: 30000 });
  await openPanel(page, 'access');
  await page.waitForSelector(`${auth}[data-state=refused]`, { timeout: 30000 });
  assert.match(await page.textContent(auth), /does not accept this way of proving yourself: choose the other one/);
  // Refused: connected, but not reserved.
  assert.equal(await page.locator(reserved).count(), 0);

  await page.click('[data-testid=auth-shared]');
  await page.fill('[data-testid=auth-key]', 'a wrong but long enough key');
  await page.click('[data-testid=auth-apply]');
  await page.waitForSelector(`${auth}[data-state=refused]:text("wrong shared key")`, { timeout: 15000 });

  await page.fill('[data-testid=auth-key]', KEY);
  await page.click('[data-testid=auth-apply]');
  await page.waitForSelector(`${auth}[data-state=granted][data-method=shared_key]`, { timeout: 15000 });
  assert.equal(await page.getAttribute(auth, 'data-level'), 'authenticated');
  await page.waitForSelector(reserved, { timeout: 15000 });

  // The choice and the token are kept: a reload gets straight back in with the token.
  await page.reload();
  await page.waitForSelector('[data-testid=panel-toggle][data-panel=access][data-state=granted]', { timeout: 30000 });
  await openPanel(page, 'access');
  await page.waitForSelector(`${auth}[data-state=granted][data-method=token]`, { timeout: 30000 });
  await page.waitForSelector(reserved, { timeout: 15000 });

  const metrics = await (await fetch(`${relay.url}metrics`)).text();
  const value = (series) => Number(metrics.split('\n').find((l) => l.startsWith(series))?.split(' ').pop() ?? 0);
  assert.ok(value('darkswap_relay_auth_attempts_total{method="shared_key",reason="wrong_proof"}') >= 1);
  assert.ok(value('darkswap_relay_auth_attempts_total{method="shared_key",reason="ok"}') >= 1);
  assert.ok(value('darkswap_relay_auth_attempts_total{method="token",reason="ok"}') >= 1);
});

test('a relay that prices new identities: the page does the work once, then is granted and reserves', async () => {
  const dir = tempDir();
  browser ??= await launchBrowser();
  const bits = 20;
  const priced = await startRelay(join(dir, 'data'), await relayPorts(), ['--auth-identity-stamp-bits', String(bits)]);
  try {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    const began = Date.now();
    await page.goto(priced.url);
    await page.waitForSelector(reserved, { timeout: 60000 });
    const reservedMs = Date.now() - began;
    await openPanel(page, 'access');
    const auth = '[data-testid=auth-state]';
    await page.waitForSelector(`${auth}[data-state=granted][data-method=identity]`, { timeout: 15000 });
    const stamp = page.locator('[data-testid=auth-stamp]');
    assert.equal(await stamp.getAttribute('data-bits'), String(bits));
    const ms = Number(await stamp.getAttribute('data-ms'));
    console.log(`identity stamp in Chromium: ${bits} bits in ${ms} ms (${await stamp.textContent()}); page load to reserved ${reservedMs} ms`);
    const metrics = await (await fetch(`${priced.url}metrics`)).text();
    const value = (series) => Number(metrics.split('\n').find((l) => l.startsWith(series))?.split(' ').pop() ?? 0);
    assert.equal(value('darkswap_relay_auth_attempts_total{method="identity",reason="ok"}'), 1);
    // The page never answered without the work.
    assert.equal(value('darkswap_relay_auth_attempts_total{method="identity",reason="weak_stamp"}'), 0);
    // It keeps the stamp with its identity (8 bytes), so no relay makes it search again.
    const kept = await page.evaluate(() => new Promise((ok, fail) => {
      const open = indexedDB.open('darkswap');
      open.onerror = () => fail(open.error);
      open.onsuccess = () => {
        const all = open.result.transaction('identity').objectStore('identity').getAllKeys();
        all.onsuccess = () => {
          const name = all.result.find((k) => String(k).startsWith('identity-stamp/'));
          if (!name) return ok(null);
          const get = open.result.transaction('identity').objectStore('identity').get(name);
          get.onsuccess = () => ok(new Uint8Array(get.result).length);
          get.onerror = () => fail(get.error);
        };
        all.onerror = () => fail(all.error);
      };
    }));
    assert.equal(kept, 8, 'the stamp is kept');
  } finally {
    await stopRelay(priced);
  }
});
