// Two pages settle a trade on Bitcoin: a real regtest bitcoind and ord behind the real relay
// (its chain gateway, ord's API, the faucets), real Chromium. The maker's page holds the
// relay faucet's rune (1000.00, 100,000 units) and sells all of it at 5 sat a unit; the taker's
// page takes 400.00: its offer goes with the take, both pages look the other's outputs up, build
// the same swap, sign their own inputs, and it is broadcast; both show the same txid. The taker
// reloads while the swap is unconfirmed: its settlement comes back from IndexedDB and, without
// the wallet unlocked, sees the block that settles it. ord counts 400.00 on the taker's output
// and 600.00 on the maker's change; the maker's order shows 60,000 left, and the taker then
// takes the rest (a second swap, from the maker's rune change). Each page's metrics count two
// settled swaps and no refusal. The figures (take → broadcast, take → settled) are printed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { follow, launchBrowser, openPanel, stopRelay } from './harness.mjs';
import {
  PASSWORD, confirmedSats, startChainRelay, create, refreshUntil, runesHeld, startChain, until, walletPage,
} from './regtest.mjs';

const OUT = join(import.meta.dirname, 'output');
const children = [];
let browser;
let relay;
after(async () => {
  await browser?.close();
  if (relay) await stopRelay(relay);
  for (const c of children.reverse()) c.kill('SIGTERM');
});

// The settlement of the page's only trade in state `state` (or with `step`): its attributes.
async function settlement(page, step, timeout = 60000) {
  const sel = `[data-testid=settlement][data-step=${step}]`;
  await page.waitForSelector(sel, { timeout }).catch(async (e) => {
    const shown = await page.$$eval('[data-testid=trade]', (rows) => rows.map((r) => r.textContent)).catch(() => []);
    throw new Error(`${e.message}; the trades read: ${JSON.stringify(shown)}`);
  });
  const el = await page.$(sel);
  return {
    txid: await el.getAttribute('data-txid'),
    text: (await el.textContent()).trim(),
  };
}

async function ordRunes(chain, outpoint) {
  const v = await (await fetch(`${chain.ordUrl}/output/${outpoint}`, { headers: { Accept: 'application/json' } })).json();
  return Object.values(v.runes ?? {}).reduce((sum, r) => sum + Number(r.amount), 0);
}

async function unlock(page) {
  await openPanel(page, 'wallet');
  await page.fill('[data-testid=wallet-password]', PASSWORD);
  await page.click('[data-testid=wallet-unlock]');
  await page.waitForSelector('[data-testid=wallet-pay-address]');
}

// Takes `amount` of the maker's order from `page`; when the take went out.
async function take(page, amount) {
  await page.waitForSelector('[data-testid=book-order][data-mine=false]', { timeout: 30000 });
  await page.fill('[data-testid=take-amount]', String(amount));
  assert.equal(await page.inputValue('[data-testid=take-fee-rate]'), '2');
  const t0 = Date.now();
  await page.click('[data-testid=take]');
  return t0;
}

test('two pages settle a rune sale on regtest, the taker reloading in the middle', { timeout: 420000 }, async () => {
  const chain = await startChain(children);
  relay = await startChainRelay(chain);
  browser = await launchBrowser();
  const maker = await walletPage(browser, relay.url);
  await create(maker);
  await maker.click('[data-testid=wallet-faucet-runes]');
  await until('the rune faucet', async () => /faucet sent 1000\.00 of rune/.test(await maker.textContent('[data-testid=wallet-message]').catch(() => '')), 60000);
  await refreshUntil(maker, 'the rune on the maker', async () => (await runesHeld(maker)).some((r) => r.units === '100000'), chain);
  const spaced = (await runesHeld(maker))[0].name;
  const PAIR = `RUNE:${spaced.replaceAll('•', '')}/BTC`;

  const taker = await walletPage(browser, relay.url);
  await create(taker);
  await taker.click('[data-testid=wallet-faucet]');
  await until('the faucet', async () => /faucet mined/.test(await taker.textContent('[data-testid=wallet-message]').catch(() => '')), 60000);
  await confirmedSats(taker, 2 * 50 * 1e8, chain);

  await follow(maker, PAIR);
  await follow(taker, PAIR);
  // Both pages learn the rune's divisibility (2) and spaced name from ord, and then read and
  // type its amounts in it: 1000.00 is 100,000 units; 500 sat per rune is 5 sat per unit.
  for (const page of [maker, taker]) {
    await until('the rune\'s units', async () => (await page.getAttribute('[data-testid=order-amount]', 'placeholder')) === spaced);
  }
  assert.equal(await maker.getAttribute('[data-testid=order-price]', 'placeholder'), `sat per ${spaced}`);
  await maker.selectOption('[data-testid=order-side]', 'sell');
  await maker.fill('[data-testid=order-amount]', '1000');
  await maker.fill('[data-testid=order-price]', '500');
  assert.equal(await maker.textContent('[data-testid=order-total]'), `You sell 1000.00 ${spaced} and receive 500000 sat (0.005 BTC)`);
  await maker.click('[data-testid=order-place]');
  await maker.waitForSelector('[data-testid=my-order]', { timeout: 15000 });
  assert.equal(await maker.getAttribute('[data-testid=my-order]', 'data-amount'), '100000');

  const t0 = await take(taker, '400');
  const onTaker = await settlement(taker, 'broadcast');
  const takeToBroadcast = Date.now() - t0;
  const onMaker = await settlement(maker, 'broadcast');
  assert.match(onTaker.txid, /^[0-9a-f]{64}$/);
  assert.equal(onMaker.txid, onTaker.txid, 'both pages hold the same swap');
  assert.match(onMaker.text, /you give 400\.00 \S+ and get \d+ sat/);
  await until('the maker\'s order reduced', async () => (await maker.getAttribute('[data-testid=my-order]', 'data-amount').catch(() => null)) === '60000');

  // The taker reloads while the swap waits for a block: its settlement is read back, and the
  // block settles it with the wallet still locked (watching needs no keys).
  await taker.reload();
  await follow(taker, PAIR);
  await settlement(taker, 'broadcast');
  chain.cli('generatetoaddress', '1', 'bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw');
  await chain.synced();
  const settledTaker = await settlement(taker, 'settled');
  const takeToSettled = Date.now() - t0;
  assert.equal(settledTaker.txid, onTaker.txid);
  assert.match(settledTaker.text, /you gave \d+ sat .* and got 400\.00 /);
  // The taker hears that it settled (it was looking at the page: a toast, no count).
  assert.match(await taker.locator('[data-testid=toast]').last().textContent(), /Your trade settled/);
  await settlement(maker, 'settled');
  assert.equal(await ordRunes(chain, `${onTaker.txid}:0`), 40000, 'the taker\'s fill, by ord');
  assert.equal(await ordRunes(chain, `${onTaker.txid}:1`), 60000, 'the maker\'s rune change, by ord');

  // The second take: the rest, from the maker's confirmed rune change.
  await unlock(taker);
  await refreshUntil(taker, 'the fill on the taker', async () => (await runesHeld(taker)).some((r) => r.units === '40000'), chain);
  await taker.fill('[data-testid=take-amount]', '');
  await until('the rune\'s units after the reload', async () => (await taker.getAttribute('[data-testid=order-amount]', 'placeholder')) === spaced);
  await take(taker, '600');
  await until('a second settlement', async () => (await taker.$$('[data-testid=settlement][data-step=broadcast]')).length === 1, 60000);
  const second = await settlement(taker, 'broadcast');
  assert.notEqual(second.txid, onTaker.txid);
  chain.cli('generatetoaddress', '1', 'bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw');
  await chain.synced();
  await until('both swaps settled on both pages', async () => {
    const n = await Promise.all([maker, taker].map((p) => p.$$('[data-testid=settlement][data-step=settled]').then((s) => s.length)));
    return n[0] === 2 && n[1] === 2;
  }, 60000);
  assert.equal(await ordRunes(chain, `${second.txid}:0`), 60000);
  await until('the order gone', async () => (await maker.$$('[data-testid=my-order]')).length === 0);

  // Counted: two settled swaps on each side, nothing refused.
  for (const page of [maker, taker]) {
    await openPanel(page, 'metrics');
    await page.click('[data-testid=metrics-toggle]');
    const text = await page.textContent('[data-testid=metrics-text]');
    assert.match(text, /darkswap_client_settle_ended_total\{step="settled"\} 2/);
    assert.doesNotMatch(text, /darkswap_client_settle_refused_total\{/);
  }
  console.log(`settle figures: take → broadcast ${takeToBroadcast} ms, take → settled (block mined on demand, taker reloaded) ${takeToSettled} ms`);
  mkdirSync(OUT, { recursive: true });
  await taker.locator('#trades').screenshot({ path: join(OUT, 'settled.png') });
  assert.deepEqual([...maker.errors, ...taker.errors], []);
});
