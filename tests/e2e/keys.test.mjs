// Keys at rest (issue 17, item 8), in real Chromium against the real relay: the trader locks the
// identity key and the relay's shared key with the wallet's password; IndexedDB then holds
// neither in the clear; a visit starts with the password and nothing connects before it; a
// wrong password and an altered record are refused without a new identity being made; the
// sealed shared key still gets the trader in; removing the lock puts the keys back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRelay, stopRelay, relayPorts, tempDir, launchBrowser, openPanel, reserved } from './harness.mjs';
import { create, PASSWORD } from './regtest.mjs';

const SHARED_KEY = 'the operator told me this long shared key';

let browser;
let relay;
after(async () => {
  await browser?.close();
  if (relay) await stopRelay(relay);
});

// Every record of every object store of the page's database: bytes as hex, the rest as JSON.
function dump(page) {
  return page.evaluate(() => new Promise((ok, fail) => {
    const open = indexedDB.open('darkswap');
    open.onerror = () => fail(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const names = [...db.objectStoreNames];
      const t = db.transaction(names, 'readonly');
      const out = {};
      for (const name of names) {
        const cursor = t.objectStore(name).openCursor();
        cursor.onsuccess = () => {
          const c = cursor.result;
          if (!c) return;
          const v = c.value;
          out[`${name}/${c.key}`] = v instanceof Uint8Array
            ? [...v].map((b) => b.toString(16).padStart(2, '0')).join('')
            : JSON.stringify(v);
          c.continue();
        };
      }
      t.oncomplete = () => { db.close(); ok(out); };
      t.onerror = () => fail(t.error);
    };
  }));
}

// Changes one record of the identity store: `edit(bytes)` returns the new bytes, or null to delete.
function editRecord(page, key, edit) {
  return page.evaluate(({ key, edit }) => new Promise((ok, fail) => {
    const change = new Function('bytes', `return (${edit})(bytes)`);
    const open = indexedDB.open('darkswap');
    open.onsuccess = () => {
      const db = open.result;
      const t = db.transaction('identity', 'readwrite');
      const store = t.objectStore('identity');
      const get = store.get(key);
      get.onsuccess = () => {
        const next = change(get.result);
        if (next === null) store.delete(key); else store.put(next, key);
      };
      t.oncomplete = () => { db.close(); ok(); };
      t.onerror = () => fail(t.error);
    };
    open.onerror = () => fail(open.error);
  }), { key, edit: edit.toString() });
}

const hex = (text) => Buffer.from(text).toString('hex');

test('keys locked with the wallet password are sealed at rest, and each visit starts with it', async () => {
  const dir = tempDir();
  const keyFile = join(dir, 'shared.key');
  writeFileSync(keyFile, `${SHARED_KEY}\n`);
  // A relay that takes only the shared key and names a chain (whose server need not answer:
  // a wallet is made offline).
  relay = await startRelay(join(dir, 'data'), await relayPorts(), [
    '--auth-identity', 'false', '--auth-shared-key-file', keyFile,
    '--chain-network', 'regtest', '--chain-esplora-url', 'http://127.0.0.1:9',
  ]);
  browser = await launchBrowser();
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(relay.url);
  await openPanel(page, 'access');
  await page.click('[data-testid=auth-shared]');
  await page.fill('[data-testid=auth-key]', SHARED_KEY);
  await page.click('[data-testid=auth-apply]');
  await page.waitForSelector(reserved, { timeout: 30000 });
  await openPanel(page, 'wallet');
  await create(page);

  // Before: the identity key and the shared key are in IndexedDB in the clear.
  await openPanel(page, 'identity');
  const me = (await page.textContent('[data-testid=peer-id]')).trim();
  const before = await dump(page);
  const identityHex = before['identity/ed25519'];
  assert.match(identityHex, /^08011240[0-9a-f]{128}$/, 'a protobuf ed25519 keypair');
  const secretHex = identityHex.slice(8, 8 + 64);
  assert.ok(before[`identity/auth-credential/${me}`].includes(SHARED_KEY));

  // Locking asks for the wallet's password: another is refused.
  await page.waitForSelector('[data-testid=keys-at-rest][data-state=clear]');
  await page.fill('[data-testid=keys-at-rest-password]', 'not the wallet password');
  await page.click('[data-testid=keys-lock]');
  await page.waitForSelector('[data-testid=keys-at-rest-message].error', { timeout: 30000 });
  assert.match(await page.textContent('[data-testid=keys-at-rest-message]'), /wrong password/);
  await page.fill('[data-testid=keys-at-rest-password]', PASSWORD);
  await page.click('[data-testid=keys-lock]');
  await page.waitForSelector('[data-testid=keys-at-rest][data-state=locked]', { timeout: 30000 });

  // After: no record holds any 8 bytes of the secret key, nor the shared key.
  const after = await dump(page);
  assert.equal(after['identity/ed25519'], undefined);
  const everything = Object.values(after).join('\n');
  for (let i = 0; i + 16 <= secretHex.length; i += 2) {
    assert.ok(!everything.includes(secretHex.slice(i, i + 16)), `secret bytes ${i / 2}.. found at rest`);
  }
  assert.ok(!everything.includes(SHARED_KEY) && !everything.includes(hex(SHARED_KEY)), 'the shared key is at rest in the clear');
  assert.ok(after['identity/data-key'] && after['identity/ed25519-sealed'] && after[`identity/shared-key-sealed/${me}`]);

  // The next visit must use the sealed shared key (its token is dropped) and starts locked:
  // nothing connects before the password.
  await editRecord(page, `auth-token/${me}`, () => null);
  const asked = [];
  const onRequest = (r) => asked.push(new URL(r.url()).pathname);
  page.on('request', onRequest);
  await page.reload();
  await page.waitForSelector('[data-testid=keys-unlock]', { timeout: 30000 });
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('[data-testid=relay-state][data-state=reserved]').count(), 0);
  const health = await (await fetch(`${relay.url}health`)).json();
  assert.equal(health.connections, 0, 'the locked page opened no connection to the relay');
  // Over HTTP it loaded itself and asked the relay nothing (no relay-info, no chain).
  assert.deepEqual(asked.filter((p) => p.startsWith('/api/') || p.startsWith('/esplora')), [], asked.join(' '));
  page.off('request', onRequest);

  // A wrong password is refused; so is the right one when the sealed identity was altered, and
  // no new identity is made in its place.
  await page.fill('[data-testid=keys-password]', 'a wrong password');
  await page.click('[data-testid=keys-unlock-button]');
  await page.waitForFunction(() => /wrong password/.test(document.querySelector('[data-testid=keys-message]')?.textContent ?? ''), null, { timeout: 30000 });
  const sealedIdentity = (await dump(page))['identity/ed25519-sealed'];
  await editRecord(page, 'ed25519-sealed', (bytes) => { const b = new Uint8Array(bytes); b[b.length - 1] ^= 1; return b; });
  await page.fill('[data-testid=keys-password]', PASSWORD);
  await page.click('[data-testid=keys-unlock-button]');
  await page.waitForFunction(() => /does not open/.test(document.querySelector('[data-testid=keys-message]')?.textContent ?? ''), null, { timeout: 30000 });
  assert.equal((await dump(page))['identity/ed25519'], undefined, 'no new identity in the clear');
  assert.equal(await page.locator('[data-testid=keys-unlock]').count(), 1);
  // Half a lock (the wrapped data key gone): the next visit says so and makes no new identity.
  const wrappedKey = (await dump(page))['identity/data-key'];
  await editRecord(page, 'data-key', () => null);
  await page.reload();
  await page.waitForSelector('[data-testid=identity-error]', { state: 'attached', timeout: 30000 });
  assert.match(await page.textContent('[data-testid=identity-error]'), /lock on this browser's keys is incomplete/);
  await page.waitForTimeout(1000);
  assert.equal((await dump(page))['identity/ed25519'], undefined, 'no new identity in its place');
  assert.equal(await page.locator('[data-testid=relay-state][data-state=reserved]').count(), 0);
  // Restored, it opens: the same PeerId, in through the sealed shared key.
  const bytesOf = (hexText) => `() => new Uint8Array(${JSON.stringify([...Buffer.from(hexText, 'hex')])})`;
  await editRecord(page, 'data-key', bytesOf(wrappedKey));
  await editRecord(page, 'ed25519-sealed', bytesOf(sealedIdentity));
  await page.reload();
  await page.waitForSelector('[data-testid=keys-unlock]', { timeout: 30000 });
  await page.fill('[data-testid=keys-password]', PASSWORD);
  const unlocking = Date.now();
  await page.click('[data-testid=keys-unlock-button]');
  await page.waitForSelector(reserved, { timeout: 30000 });
  console.log(`keys at rest: the password given -> reserved in ${Date.now() - unlocking} ms (Argon2id 64 MiB, 3 passes, in this build)`);
  await openPanel(page, 'access');
  await page.waitForSelector('[data-testid=auth-state][data-state=granted][data-method=shared_key]', { timeout: 15000 });
  await openPanel(page, 'identity');
  assert.equal((await page.textContent('[data-testid=peer-id]')).trim(), me);
  assert.equal(await page.locator('[data-testid=keys-unlock]').count(), 0);

  // Removing the lock (the password again) puts both keys back in the clear: no prompt next time.
  await page.waitForSelector('[data-testid=keys-at-rest][data-state=locked]');
  await page.fill('[data-testid=keys-at-rest-password]', PASSWORD);
  await page.click('[data-testid=keys-remove-lock]');
  await page.waitForSelector('[data-testid=keys-at-rest][data-state=clear]', { timeout: 30000 });
  const removed = await dump(page);
  assert.equal(removed['identity/ed25519'], identityHex);
  assert.ok(removed[`identity/auth-credential/${me}`].includes(SHARED_KEY));
  for (const gone of ['identity/data-key', 'identity/ed25519-sealed', `identity/shared-key-sealed/${me}`]) {
    assert.equal(removed[gone], undefined, gone);
  }
  await page.reload();
  await page.waitForSelector(reserved, { timeout: 30000 });
  assert.equal(await page.locator('[data-testid=keys-unlock]').count(), 0);
  assert.deepEqual(errors, []);
});
