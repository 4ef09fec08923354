// The page's wallet in real Chromium against a real regtest chain: a real bitcoind and a real ord
// behind the real relay, which names them in relay-info (its gateway at /esplora, the faucet).
// Page A creates a wallet (the words shown once, three of them retyped; wrong ones refused), the
// faucet pays it, the balance appears; its receiving address's QR code decodes (jsQR) to the
// address; page B creates one, its first chain read failing once on the way (retried); A sends to
// B's address; after a block B's balance shows it. IndexedDB holds no word of the mnemonic; after
// a reload the wallet is locked, a wrong password is refused, the right one opens it with the
// same addresses. Then runes: ord's wallet etches DARKSWAP•TEST•RUNE and sends 1000.00 of it to
// A's rune address; A sees it by name in its divisibility, sends 250.00 to B's rune address;
// after a block B holds 250.00 and A 750.00, as ord counts them too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import { follow, launchBrowser, openPanel, stopRelay } from './harness.mjs';
import {
  PASSWORD, confirmedSats, startChainRelay, create, etch, refreshUntil, runeHeld, runesHeld, startChain, until, walletPage,
} from './regtest.mjs';

const SPACED = 'DARKSWAP•TEST•RUNE';
const OUT = join(import.meta.dirname, 'output');
const children = [];
let browser;
let relay;
after(async () => {
  await browser?.close();
  if (relay) await stopRelay(relay);
  for (const c of children.reverse()) c.kill('SIGTERM');
});

test('a page creates a wallet, is paid by the faucet and sends to another page, then runes', { timeout: 360000 }, async () => {
  const chain = await startChain(children);
  relay = await startChainRelay(chain);
  browser = await launchBrowser();
  const a = await walletPage(browser, relay.url);
  const words = await create(a, { tryWrongWords: true });
  const payA = (await a.textContent('[data-testid=wallet-pay-address]')).trim();
  assert.match(payA, /^bcrt1p/);

  await a.click('[data-testid=wallet-faucet]');
  await until('the faucet', async () => /faucet mined/.test(await a.textContent('[data-testid=wallet-message]').catch(() => '')));
  // Blocks 1..101 pay A: the coinbases of blocks 1 and 2 are mature.
  await confirmedSats(a, 2 * 50 * 1e8, chain);

  // The receiving address's QR code reads back as the address (jsQR on the drawn SVG). The
  // decoding runs in a blank page of its own: the app's Content-Security-Policy admits neither
  // jsQR nor a data: image.
  const svgText = await a.evaluate(() => new XMLSerializer().serializeToString(document.querySelector('[data-testid=wallet-qr]')));
  const reader = await a.context().newPage();
  await reader.addScriptTag({ path: join(import.meta.dirname, '..', '..', 'node_modules', 'jsqr', 'dist', 'jsQR.js') });
  const decoded = await reader.evaluate(async (svg) => {
    const url = 'data:image/svg+xml;base64,' + btoa(svg);
    const img = new Image(296, 296);
    await new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; img.src = url; });
    const canvas = document.createElement('canvas');
    canvas.width = 296; canvas.height = 296;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0, 296, 296);
    return window.jsQR(ctx.getImageData(0, 0, 296, 296).data, 296, 296)?.data ?? null;
  }, svgText);
  await reader.close();
  // (Address 0 was paid: the page shows the next unused one.)
  const payNow = (await a.textContent('[data-testid=wallet-pay-address]')).trim();
  assert.notEqual(payNow, payA);
  assert.equal(decoded, `bitcoin:${payNow.toUpperCase()}`);
  // No estimates on regtest: the page says so and takes a typed rate.
  assert.match(await a.textContent('[data-testid=wallet-fee-note]'), /no fee estimates/);

  const b = await walletPage(browser, relay.url);
  // B's first read of the chain fails (connection refused, as a dropped network does): retried.
  let dropped = 0;
  await b.route('**/esplora/blocks/tip/height', (route) => {
    if (dropped === 0) { dropped += 1; return route.abort('connectionrefused'); }
    return route.continue();
  });
  await create(b);
  await b.waitForSelector('[data-testid=wallet-btc-confirmed]');
  assert.equal(dropped, 1);
  assert.ok(!/cannot read/.test(await b.textContent('[data-testid=wallet-message]').catch(() => '')));
  const payB = (await b.textContent('[data-testid=wallet-pay-address]')).trim();
  await a.fill('[data-testid=wallet-send-to]', payB);
  await a.fill('[data-testid=wallet-send-amount]', '100000000');
  await a.fill('[data-testid=wallet-send-fee]', '2');
  await a.click('[data-testid=wallet-send]');
  await until('the send', async () => /^sent /.test(await a.textContent('[data-testid=wallet-message]').catch(() => '')));
  const sentTxid = (await a.textContent('[data-testid=wallet-message]')).match(/^sent ([0-9a-f]{64})/)[1];
  chain.cli('generatetoaddress', '1', payB);
  await confirmedSats(b, 100000000, chain);

  // History: B's receipt and the block's coinbase it mined to itself; A's 101 faucet coinbases (five pages of Esplora's 25) and the send,
  // what it cost worked out from the transactions' bytes.
  await b.click('[data-testid=wallet-history-load]');
  await b.waitForSelector('[data-testid=wallet-history-row]', { timeout: 30000 });
  const rowsB = await b.$$eval('[data-testid=wallet-history-row]', (rows) => rows.map((r) => ({ txid: r.dataset.txid, net: r.dataset.net, conf: r.dataset.confirmations })));
  assert.equal(rowsB.length, 2);
  assert.deepEqual(rowsB.find((r) => r.txid === sentTxid), { txid: sentTxid, net: '100000000', conf: '1' });
  await a.click('[data-testid=wallet-history-load]');
  await a.waitForSelector('[data-testid=wallet-history-row]', { timeout: 60000 });
  const rowsA = await a.$$eval('[data-testid=wallet-history-row]', (rows) => rows.map((r) => ({ txid: r.dataset.txid, net: Number(r.dataset.net), conf: r.dataset.confirmations, fee: r.cells[3].textContent })));
  assert.equal(rowsA.length, 102);
  // Newest first: the send, in the block after A's 101.
  assert.equal(rowsA[0].txid, sentTxid);
  assert.equal(rowsA[0].conf, '1');
  assert.ok(rowsA.every((r, i) => i === 0 || Number(r.conf) >= Number(rowsA[i - 1].conf)));
  const fee = Number(rowsA[0].fee.replace(' sat', ''));
  assert.ok(fee > 0 && fee < 1000, `fee ${rowsA[0].fee}`);
  assert.equal(rowsA[0].net, -100000000 - fee);
  assert.equal(rowsA.filter((r) => r.net === 5000000000).length, 101);

  // At rest: no word of the mnemonic in the page's IndexedDB.
  const stored = await a.evaluate(() => new Promise((ok, fail) => {
    const open = indexedDB.open('darkswap');
    open.onerror = () => fail(open.error);
    open.onsuccess = () => {
      const get = open.result.transaction('wallet').objectStore('wallet').get('sealed');
      get.onsuccess = () => ok(Array.from(new Uint8Array(get.result)));
      get.onerror = () => fail(get.error);
    };
  }));
  const raw = String.fromCharCode(...stored);
  assert.ok(stored.length > 40 && stored.length < 200, `sealed record of ${stored.length} bytes`);
  // The phrase, and every word long enough that the record's random bytes cannot spell it by
  // chance (a three-letter word can, rarely: a test that may fail for no fault is no test).
  assert.ok(!raw.includes(words), 'the phrase is not stored');
  for (const w of words.split(' ').filter((w) => w.length >= 5)) assert.ok(!raw.includes(w), `the word ${w} is not stored`);

  // Reload: locked; a wrong password is refused; the right one opens the same wallet.
  await a.reload();
  await openPanel(a, 'wallet');
  await a.fill('[data-testid=wallet-password]', 'not the password');
  await a.click('[data-testid=wallet-unlock]');
  await until('the refusal', async () => /wrong password/.test(await a.textContent('[data-testid=wallet-message]').catch(() => '')));
  await a.fill('[data-testid=wallet-password]', PASSWORD);
  await a.click('[data-testid=wallet-unlock]');
  await a.waitForSelector('[data-testid=wallet-pay-address]');
  // The send's change and the coinbase matured by B's block: 100 BTC - 1 BTC - fee + 50 BTC.
  await until('the balance after reload', async () => {
    const s = Number(await a.getAttribute('[data-testid=wallet-btc-confirmed]', 'data-sats').catch(() => 0));
    return s > 148 * 1e8 && s < 149 * 1e8;
  });
  // Runes: ord's wallet etches the test rune and sends 1000.00 of it to A's rune address.
  await chain.ordWallet('create');
  const ordAddress = (await chain.ordWallet('receive')).addresses[0];
  chain.cli('generatetoaddress', '110', ordAddress);
  await etch(chain, ordAddress, SPACED);
  const runeA = (await a.textContent('[data-testid=wallet-rune-address]')).trim();
  await chain.ordWallet('send', '--fee-rate', '1', runeA, `1000.00:${SPACED}`);
  chain.cli('generatetoaddress', '1', ordAddress);
  await refreshUntil(a, 'the rune on A', async () => (await runeHeld(a))?.units === '100000', chain);
  const heldA = await runeHeld(a);
  assert.equal(heldA.name, SPACED);
  assert.match(heldA.text, /^1000\.00 /, 'in its divisibility');
  // The rune output is listed, held back from fee money.
  assert.ok((await a.$$eval('[data-testid=wallet-output-state]', (cells) => cells.map((c) => c.textContent)))
    .includes('held back: sent only by a rune send'));
  // A sends 250.00 to B's rune address; more decimals than the rune has are refused first.
  const runeB = (await b.textContent('[data-testid=wallet-rune-address]')).trim();
  await a.fill('[data-testid=wallet-rune-amount]', '250.001');
  await a.fill('[data-testid=wallet-rune-to]', runeB);
  await a.fill('[data-testid=wallet-send-fee]', '2');
  await a.click('[data-testid=wallet-send-runes]');
  await until('the refusal of 3 decimals', async () => /at most 2 decimal places/.test(await a.textContent('[data-testid=wallet-message]').catch(() => '')));
  await a.fill('[data-testid=wallet-rune-amount]', '250.00');
  await a.click('[data-testid=wallet-send-runes]');
  await until('the rune send', async () => /^sent .*250\.00 DARKSWAP•TEST•RUNE/.test(await a.textContent('[data-testid=wallet-message]').catch(() => '')));
  chain.cli('generatetoaddress', '1', ordAddress);
  await refreshUntil(b, 'the rune on B', async () => (await runeHeld(b))?.units === '25000', chain);
  await refreshUntil(a, 'the rune change on A', async () => (await runeHeld(a))?.units === '75000', chain);
  // ord counts the same: B's output holds 250.00, nothing was burned.
  const ordRune = await (await fetch(`${chain.ordUrl}/rune/DARKSWAPTESTRUNE`, { headers: { Accept: 'application/json' } })).json();
  assert.equal(ordRune.entry.burned, 0);

  // The order form takes only orders the wallet can fund, counting A's other open orders.
  const PAIR = 'RUNE:DARKSWAPTESTRUNE/BTC';
  await follow(a, PAIR);
  // The form reads the rune in its divisibility once ord has told the page: 750.00, not 75000.
  await until('the rune\'s units', async () => (await a.getAttribute('[data-testid=order-amount]', 'placeholder')) === 'DARKSWAP•TEST•RUNE');
  assert.match(await a.textContent('[data-testid=order-funds]'), /can spend 750\.00 DARKSWAP•TEST•RUNE/);
  const sell = async (amount) => {
    await a.selectOption('[data-testid=order-side]', 'sell');
    await a.fill('[data-testid=order-amount]', String(amount));
    await a.fill('[data-testid=order-price]', '50');
    await a.click('[data-testid=order-place]');
  };
  await sell('800');
  assert.match(await a.textContent('[data-testid=order-error]'), /cannot fund this order: it needs 800\.00 DARKSWAP•TEST•RUNE \(with your other open orders\), and 750\.00 DARKSWAP•TEST•RUNE can be spent/);
  await sell('500');
  await a.waitForSelector('[data-testid=my-order]', { timeout: 15000 });
  assert.equal(await a.getAttribute('[data-testid=my-order]', 'data-amount'), '50000');
  await sell('300.00');
  assert.match(await a.textContent('[data-testid=order-error]'), /needs 800\.00 .*with your other open orders/);
  assert.equal((await a.$$('[data-testid=my-order]')).length, 1);

  // The relay's own test rune: B asks the faucet, which etches it (under a reserved name) on
  // this first call; B's panel shows 1000.00 of it, and ord has it as the faucet made it.
  await b.click('[data-testid=wallet-faucet-runes]');
  await until('the rune faucet', async () => /faucet sent 1000\.00 of rune \d+:\d+/.test(await b.textContent('[data-testid=wallet-message]').catch(() => '')));
  const faucetRune = (await b.textContent('[data-testid=wallet-message]')).match(/of rune (\d+:\d+)/)[1];
  // A reserved name: 27 letters from ord's reserved base (AAAAAAAAAAAAAAAAAAAAAAAAAAA) plus the id.
  const reserved = (r) => r.units === '100000' && /^A{10}[A-Z]{17}$/.test(r.name) && /^1000\.00 /.test(r.text);
  await refreshUntil(b, 'the faucet rune on B', async () => (await runesHeld(b)).some(reserved), chain)
    .catch(async (e) => { throw new Error(`${e.message}: B holds ${JSON.stringify(await runesHeld(b))}`); });
  const ordFaucetRune = await (await fetch(`${chain.ordUrl}/rune/${faucetRune}`, { headers: { Accept: 'application/json' } })).json();
  assert.equal(ordFaucetRune.entry.divisibility, 2);
  assert.equal(ordFaucetRune.entry.symbol, '\u16DE');
  assert.equal(ordFaucetRune.entry.spaced_rune, (await runesHeld(b)).find(reserved).name);

  // The unlocked panel, with its balance, addresses and send form: nothing serious for axe-core.
  // (Evaluated through the DevTools protocol: the app's policy admits no other script tag.)
  await a.evaluate(readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8'));
  const found = await a.evaluate(async () => (await window.axe.run(document.querySelector('[data-testid=wallet]'), { resultTypes: ['violations'] }))
    .violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help}`));
  assert.deepEqual(found, []);
  mkdirSync(OUT, { recursive: true });
  await a.screenshot({ path: join(OUT, 'wallet.png'), fullPage: false });
  assert.deepEqual([...a.errors, ...b.errors], []);
});
