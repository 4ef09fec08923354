// Shared by the e2e tests that need a real regtest chain: a real bitcoind (Bitcoin Core, built
// by scripts/install-bitcoind) and a real ord indexing runes, each test's own, and the wallet
// panel's steps as a trader takes them (create, read the chain until something shows).
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { openPanel, relayPorts, startRelay, tempDir } from './harness.mjs';

export const BITCOIN_BIN = process.env.DARKSWAP_BITCOIN_BIN
  ?? join(homedir(), '.cache', 'darkswap-bitcoin', 'py-bitcoinkernel-0.1.0a5', 'bin');
export const ORD_BIN = process.env.DARKSWAP_ORD_BIN ?? 'ord';
export const PASSWORD = 'a long page password';

export function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(what, check, timeoutMs = 30000) {
  const start = Date.now();
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

// Starts bitcoind and ord; their processes go into `children` (the test stops them).
export async function startChain(children) {
  const dir = tempDir('darkswap-regtest-');
  const password = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const rpcPort = await freePort();
  const bitcoind = spawn(join(BITCOIN_BIN, 'bitcoind'), [
    '-regtest', `-datadir=${dir}`, `-rpcport=${rpcPort}`, '-rpcbind=127.0.0.1', '-rpcallowip=127.0.0.1',
    '-rpcuser=darkswap', `-rpcpassword=${password}`, '-listen=0', '-txindex=1', '-disablewallet=0',
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
  const ordArgs = (...args) => [
    '--regtest', `--bitcoin-rpc-url=http://127.0.0.1:${rpcPort}`, '--bitcoin-rpc-username=darkswap',
    `--bitcoin-rpc-password=${password}`, `--data-dir=${join(dir, 'ord')}`, '--index-runes',
    'wallet', '--server-url', ordUrl, ...args,
  ];
  const synced = async () => {
    const tip = Number(cli('getblockcount'));
    await until(`ord at ${tip}`, async () => (await ordHeight()) >= tip);
  };
  const ordWallet = async (...args) => {
    await synced();
    return JSON.parse(execFileSync(ORD_BIN, ordArgs(...args), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  };
  return { cli, dir, rpcPort, password, ordUrl, ordArgs, ordWallet, synced };
}

// The relay, naming `chain` in its relay-info: its gateway over bitcoind, ord's API, the faucets.
export async function startChainRelay(chain) {
  process.env.DARKSWAP_RELAY_BITCOIND_RPC_PASSWORD = chain.password;
  return startRelay(tempDir(), await relayPorts(), [
    '--chain-network', 'regtest', '--bitcoind-rpc-url', `http://127.0.0.1:${chain.rpcPort}`,
    '--bitcoind-rpc-user', 'darkswap', '--chain-ord-url', chain.ordUrl, '--chain-faucet', 'true',
  ]);
}

// ord's wallet etches the test rune (2 decimals, 10,000.00 premined); its batch waits for the
// commit to mature, so blocks are mined until it exits.
export async function etch(chain, ordAddress, spaced) {
  const file = join(chain.dir, 'rune.txt');
  writeFileSync(file, 'DarkSwap test rune');
  const batch = join(chain.dir, 'batch.yaml');
  writeFileSync(batch, `mode: separate-outputs\netching:\n  rune: ${spaced}\n  divisibility: 2\n  premine: '10000.00'\n  supply: '10000.00'\n  symbol: '$'\n  turbo: false\ninscriptions:\n  - file: ${file}\n`);
  await chain.synced();
  const child = spawn(ORD_BIN, chain.ordArgs('batch', '--fee-rate', '1', '--batch', batch), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((ok) => child.on('exit', ok));
  let code = null;
  const start = Date.now();
  while (code === null) {
    code = await Promise.race([exited, sleep(700).then(() => null)]);
    if (code === null) {
      if (Date.now() - start > 120000) { child.kill(); throw new Error('ord wallet batch did not finish in 120 s'); }
      chain.cli('generatetoaddress', '1', ordAddress);
    }
  }
  assert.equal(code, 0, `ord wallet batch: ${stderr}`);
  chain.cli('generatetoaddress', '1', ordAddress);
  await chain.synced();
}

export async function walletPage(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => { page.errors.push(e.message); console.error('page error:', e.message); });
  await page.goto(url);
  await openPanel(page, 'wallet');
  return page;
}

// Types the words the page asks for (1-based positions in data-position); `wrong` swaps one.
export async function retype(page, list, wrong = false) {
  const fields = await page.$$('[data-testid=wallet-confirm-word]');
  assert.equal(fields.length, 3);
  for (const [i, f] of fields.entries()) {
    const at = Number(await f.getAttribute('data-position')) - 1;
    const word = wrong && i === 1 ? list[(at + 1) % list.length] + 'x' : list[at];
    await f.fill(word.toUpperCase());
  }
}

export async function create(page, { tryWrongWords = false } = {}) {
  await page.click('[data-testid=wallet-create]');
  const words = (await page.textContent('[data-testid=wallet-words]')).trim();
  const list = words.split(' ');
  assert.equal(list.length, 12);
  await page.fill('[data-testid=wallet-new-password]', PASSWORD);
  await page.fill('[data-testid=wallet-new-password2]', PASSWORD);
  if (tryWrongWords) {
    await retype(page, list, true);
    await page.click('[data-testid=wallet-seal]');
    await until('the refusal of wrong words', async () => /retyped words differ/.test(await page.textContent('[data-testid=wallet-message]').catch(() => '')));
    assert.equal(await page.$('[data-testid=wallet-pay-address]'), null, 'not sealed');
    // The refusal keeps what was typed (the form is not rebuilt under the message).
    assert.equal(await page.inputValue('[data-testid=wallet-new-password]'), PASSWORD);
  }
  await retype(page, list);
  await page.click('[data-testid=wallet-seal]');
  await page.waitForSelector('[data-testid=wallet-pay-address]').catch(async (e) => {
    throw new Error(`${e.message}; the panel said: ${await page.textContent('[data-testid=wallet]').catch(() => '?')}`);
  });
  return words;
}

// Refreshes until `check()` holds.
export async function refreshUntil(page, what, check, chain) {
  await chain.synced();
  await until(what, async () => {
    if (await check()) return true;
    if (await page.isEnabled('[data-testid=wallet-refresh]')) await page.click('[data-testid=wallet-refresh]');
    await sleep(500);
    return false;
  });
}

// A's rune balance cell: { name, units } or null.
export async function runeHeld(page) {
  const cell = await page.$('[data-testid=wallet-rune]');
  if (!cell) return null;
  return { name: await cell.getAttribute('data-rune'), units: await cell.getAttribute('data-units'), text: (await cell.textContent()).trim() };
}

// Every rune the page's balance lists.
export async function runesHeld(page) {
  return page.$$eval('[data-testid=wallet-rune]', (cells) => cells.map((c) => ({ name: c.dataset.rune, units: c.dataset.units, text: c.textContent.trim() })));
}

// Refreshes until the confirmed bitcoin reads `sats`.
export async function confirmedSats(page, sats, chain) {
  await chain.synced();
  await until(`${sats} sat confirmed`, async () => {
    const shown = await page.getAttribute('[data-testid=wallet-btc-confirmed]', 'data-sats').catch(() => null);
    if (shown === String(sats)) return true;
    if (await page.isEnabled('[data-testid=wallet-refresh]')) await page.click('[data-testid=wallet-refresh]');
    await sleep(500);
    return false;
  });
}
