// The page's wallet in real Chromium against a real regtest chain: a real bitcoind and a real ord
// behind the real relay, which names them in relay-info (its gateway at /esplora, the faucet).
// Page A creates a wallet (the words shown once), the faucet pays it, the balance appears; page
// B creates one; A sends to B's address; after a block B's balance shows it. IndexedDB holds no
// word of the mnemonic; after a reload the wallet is locked, a wrong password is refused, the
// right one opens it with the same addresses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { launchBrowser, openPanel, relayPorts, startRelay, stopRelay, tempDir } from './harness.mjs';

const BITCOIN_BIN = process.env.DARKSWAP_BITCOIN_BIN
  ?? join(homedir(), '.cache', 'darkswap-bitcoin', 'py-bitcoinkernel-0.1.0a5', 'bin');
const ORD_BIN = process.env.DARKSWAP_ORD_BIN ?? 'ord';
const PASSWORD = 'a long page password';
const OUT = join(import.meta.dirname, 'output');
const children = [];
let browser;
let relay;
after(async () => {
  await browser?.close();
  if (relay) await stopRelay(relay);
  for (const c of children.reverse()) c.kill('SIGTERM');
});

function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, timeoutMs = 30000) {
  const start = Date.now();
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function startChain() {
  const dir = tempDir('darkswap-regtest-');
  const password = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const rpcPort = await freePort();
  const bitcoind = spawn(join(BITCOIN_BIN, 'bitcoind'), [
    '-regtest', `-datadir=${dir}`, `-rpcport=${rpcPort}`, '-rpcbind=127.0.0.1', '-rpcallowip=127.0.0.1',
    '-rpcuser=darkswap', `-rpcpassword=${password}`, '-listen=0', '-txindex=1', '-disablewallet=1',
    '-printtoconsole=0',
  ], { stdio: 'ignore' });
  children.push(bitcoind);
  const cli = (...args) => execFileSync(join(BITCOIN_BIN, 'bitcoin-cli'), [
    '-regtest', `-datadir=${dir}`, `-rpcport=${rpcPort}`, '-rpcconnect=127.0.0.1', '-rpcuser=darkswap',
    `-rpcpassword=${password}`, ...args,
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  await until('bitcoind', () => { try { cli('getblockcount'); return true; } catch { return false; } });
  const ordPort = await freePort();
  const ord = spawn(ORD_BIN, [
    '--regtest', `--bitcoin-rpc-url=http://127.0.0.1:${rpcPort}`, '--bitcoin-rpc-username=darkswap',
    `--bitcoin-rpc-password=${password}`, `--data-dir=${join(dir, 'ord')}`, '--index-runes',
    'server', '--address', '127.0.0.1', '--http-port', String(ordPort),
  ], { stdio: 'ignore' });
  children.push(ord);
  const ordUrl = `http://127.0.0.1:${ordPort}`;
  const ordHeight = async () => {
    try { return Number(await (await fetch(`${ordUrl}/blockheight`)).text()); } catch { return -1; }
  };
  await until('ord', async () => (await ordHeight()) >= 0);
  return { cli, rpcPort, password, ordUrl, synced: async () => {
    const tip = Number(cli('getblockcount'));
    await until(`ord at ${tip}`, async () => (await ordHeight()) >= tip);
  } };
}

async function walletPage(url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => { page.errors.push(e.message); console.error('page error:', e.message); });
  await page.goto(url);
  await openPanel(page, 'wallet');
  return page;
}

async function create(page) {
  await page.click('[data-testid=wallet-create]');
  const words = (await page.textContent('[data-testid=wallet-words]')).trim();
  assert.equal(words.split(' ').length, 12);
  await page.check('[data-testid=wallet-words-written]');
  await page.fill('[data-testid=wallet-new-password]', PASSWORD);
  await page.fill('[data-testid=wallet-new-password2]', PASSWORD);
  await page.click('[data-testid=wallet-seal]');
  await page.waitForSelector('[data-testid=wallet-pay-address]');
  return words;
}

// Refreshes until the confirmed bitcoin reads `sats`.
async function confirmedSats(page, sats, chain) {
  await chain.synced();
  await until(`${sats} sat confirmed`, async () => {
    const shown = await page.getAttribute('[data-testid=wallet-btc-confirmed]', 'data-sats').catch(() => null);
    if (shown === String(sats)) return true;
    if (await page.isEnabled('[data-testid=wallet-refresh]')) await page.click('[data-testid=wallet-refresh]');
    await sleep(500);
    return false;
  });
}

test('a page creates a wallet, is paid by the faucet and sends to another page', { timeout: 180000 }, async () => {
  const chain = await startChain();
  process.env.DARKSWAP_RELAY_BITCOIND_RPC_PASSWORD = chain.password;
  relay = await startRelay(tempDir(), await relayPorts(), [
    '--chain-network', 'regtest', '--bitcoind-rpc-url', `http://127.0.0.1:${chain.rpcPort}`,
    '--bitcoind-rpc-user', 'darkswap', '--chain-ord-url', chain.ordUrl, '--chain-faucet', 'true',
  ]);
  browser = await launchBrowser();
  const a = await walletPage(relay.url);
  const words = await create(a);
  const payA = (await a.textContent('[data-testid=wallet-pay-address]')).trim();
  assert.match(payA, /^bcrt1p/);

  await a.click('[data-testid=wallet-faucet]');
  await until('the faucet', async () => /faucet mined/.test(await a.textContent('[data-testid=wallet-message]').catch(() => '')));
  // Blocks 1..101 pay A: the coinbases of blocks 1 and 2 are mature.
  await confirmedSats(a, 2 * 50 * 1e8, chain);

  const b = await walletPage(relay.url);
  await create(b);
  const payB = (await b.textContent('[data-testid=wallet-pay-address]')).trim();
  await a.fill('[data-testid=wallet-send-to]', payB);
  await a.fill('[data-testid=wallet-send-amount]', '100000000');
  await a.fill('[data-testid=wallet-send-fee]', '2');
  await a.click('[data-testid=wallet-send]');
  await until('the send', async () => /^sent /.test(await a.textContent('[data-testid=wallet-message]').catch(() => '')));
  chain.cli('generatetoaddress', '1', payB);
  await confirmedSats(b, 100000000, chain);

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
  for (const w of words.split(' ')) assert.ok(!raw.includes(w), `the word ${w} is not stored`);

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
  // The unlocked panel, with its balance, addresses and send form: nothing serious for axe-core.
  await a.addScriptTag({ path: join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js') });
  const found = await a.evaluate(async () => (await window.axe.run(document.querySelector('[data-testid=wallet]'), { resultTypes: ['violations'] }))
    .violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help}`));
  assert.deepEqual(found, []);
  mkdirSync(OUT, { recursive: true });
  await a.screenshot({ path: join(OUT, 'wallet.png'), fullPage: false });
  assert.deepEqual([...a.errors, ...b.errors], []);
});
