// Soak: two real Chromium pages and a CLI bot trade continuously through one real relay for
// --minutes (default 60). Each round: page A makes an order and the bot takes part of it; the bot
// makes an order and page B takes part of it; A and the bot cancel their oldest orders (each
// keeps four live); every --reload-secs one page reloads (alternately). Every --sample-secs it samples
// the pages' JS heap and wasm memory, the relay's RSS, descriptors and connections, and the bot's
// RSS; at the end it prints each series' slope after warm-up. Then it reloads both pages and
// audits: every trade agreed on both of its sides, once, in the page's stored state and in the
// bot's log; every live order where it should be, with the right amount, in its maker's stored
// state and in the bot's book. Exit status 1 on any loss or duplicate.
//
// Usage: node tests/e2e/soak.mjs [--minutes N] [--sample-secs N] [--reload-secs N]
// (scripts/soak builds what it needs and runs this; scripts/test-all runs 5 minutes.)
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  launchBrowser, relayPorts, reserved, startRelay, stopRelay, tempDir, twoReservedPages,
} from './harness.mjs';

const root = resolve(import.meta.dirname, '..', '..');
const CLI_BIN = process.env.DARKSWAP_CLI_BIN ?? join(root, 'target', 'debug', 'darkswap');
const OUT = join(import.meta.dirname, 'output');
mkdirSync(OUT, { recursive: true });
const PAIR = 'RUNE:SOAK/BTC';

const opts = { minutes: 60, sampleSecs: 60, reloadSecs: 180 };
for (let i = 2; i < process.argv.length; i += 2) {
  const [flag, value] = [process.argv[i], Number(process.argv[i + 1])];
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag} needs a positive number`);
  if (flag === '--minutes') opts.minutes = value;
  else if (flag === '--sample-secs') opts.sampleSecs = value;
  else if (flag === '--reload-secs') opts.reloadSecs = value;
  else throw new Error(`unknown argument ${flag} (--minutes N, --sample-secs N, --reload-secs N)`);
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const T = 30000;

// The CLI trader, driven line by line (`darkswap-cli market`).
class Bot {
  constructor(relayAddr, identity) {
    this.child = spawn(CLI_BIN, ['--relay', relayAddr, '--identity', identity, 'market', PAIR], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = [];
    this.waiters = [];
    this.agreed = new Map(); // trade id -> role (as the bot prints it)
    this.duplicates = [];
    this.errors = [];
    createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line));
    this.child.on('error', (e) => this.onLine(`error cannot run ${CLI_BIN}: ${e.message}`));
  }

  onLine(line) {
    const trade = line.match(/^trade ([0-9a-f]+) agreed (\w+) /);
    if (trade) {
      if (this.agreed.has(trade[1])) this.duplicates.push(trade[1]);
      this.agreed.set(trade[1], trade[2]);
    }
    if (/^error /.test(line)) this.errors.push(line);
    this.lines.push(line);
    if (this.lines.length > 10000) this.lines.splice(0, 5000);
    for (const w of [...this.waiters]) {
      const m = line.match(w.re);
      if (m) { this.waiters.splice(this.waiters.indexOf(w), 1); clearTimeout(w.timer); w.ok(m); }
    }
  }

  // The next line matching `re` after this call.
  next(re, what, timeout = T) {
    return new Promise((ok, fail) => {
      const w = { re, ok };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        fail(new Error(`bot: no ${what} within ${timeout} ms; last lines:\n${this.lines.slice(-15).join('\n')}`));
      }, timeout);
      this.waiters.push(w);
    });
  }

  send(command) { this.child.stdin.write(`${command}\n`); }

  // The bot's view of the book: id -> { side, price, amount, maker }.
  async book() {
    const end = this.next(new RegExp(`^end ${PAIR.replace(/[/]/g, '\\/')} orders=`), 'book listing');
    const start = this.lines.length;
    this.send(`book ${PAIR}`);
    await end;
    const orders = new Map();
    for (const line of this.lines.slice(start)) {
      const m = line.match(/^order ([0-9a-f]+) (\w+) (\S+) (\d+) maker=(\S+?)( mine)?$/);
      if (m) orders.set(m[1], { side: m[2], price: m[3], amount: Number(m[4]), maker: m[5] });
    }
    return orders;
  }

  // The bot's own live orders: id -> amount.
  async own() {
    const end = this.next(/^end mine=/, 'own orders');
    const start = this.lines.length;
    this.send('orders');
    await end;
    const orders = new Map();
    for (const line of this.lines.slice(start)) {
      const m = line.match(/^mine ([0-9a-f]+) \S+ \w+ \S+ (\d+)$/);
      if (m) orders.set(m[1], Number(m[2]));
    }
    return orders;
  }
}

async function follow(page) {
  await page.fill('[data-testid=pair-input]', PAIR);
  await page.click('[data-testid=pair-follow]');
  await page.waitForSelector(`[data-testid=book][data-pair="${PAIR}"]`, { timeout: T });
}

async function myOrders(page) {
  return page.$$eval('[data-testid=my-order]', (rows) => rows.map((r) => ({
    id: r.dataset.order, amount: Number(r.dataset.amount),
  })));
}

async function agreedTrades(page) {
  return page.$$eval('[data-testid=trade][data-state=agreed]', (items) => items.map((t) => ({
    id: t.dataset.trade, role: t.dataset.role, amount: Number(t.dataset.amount),
  })));
}

async function makeOrder(page, side, amount, price) {
  const before = new Set((await myOrders(page)).map((o) => o.id));
  await page.selectOption('[data-testid=order-side]', side);
  await page.fill('[data-testid=order-amount]', String(amount));
  await page.fill('[data-testid=order-price]', price);
  await page.click('[data-testid=order-place]');
  const deadline = Date.now() + T;
  while (Date.now() < deadline) {
    const added = (await myOrders(page)).find((o) => !before.has(o.id));
    if (added) return added.id;
    await sleep(50);
  }
  throw new Error(`page did not place its ${side} order`);
}

async function waitAgreed(page, tradeId) {
  await page.waitForSelector(`[data-testid=trade][data-trade="${tradeId}"][data-state=agreed]`, { timeout: T });
}

async function reloadPage(page) {
  await page.reload();
  await page.waitForSelector(reserved, { timeout: T });
  await follow(page);
}

// Pages expose their wasm memory to the sampler: Trunk announces the instance once started.
const captureWasm = () => {
  addEventListener('TrunkApplicationStarted', (e) => { window.__soakWasmMemory = e.detail?.wasm?.memory; });
};

async function pageMemory(page) {
  const cdp = await page.context().newCDPSession(page);
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  await cdp.detach();
  const wasm = await page.evaluate(() => window.__soakWasmMemory?.buffer.byteLength ?? 0);
  return { heap: usedSize, wasm };
}

function procStatus(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
}

function metric(body, series) {
  let sum = 0;
  for (const line of body.split('\n')) {
    if (line.startsWith(series)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

// Least-squares slope of (t, v) in units per hour.
function slopePerHour(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mv = points.reduce((s, p) => s + p.v, 0) / n;
  let num = 0; let den = 0;
  for (const p of points) { num += (p.t - mt) * (p.v - mv); den += (p.t - mt) ** 2; }
  return den === 0 ? 0 : (num / den) * 3600;
}

const relay = await startRelay(tempDir(), await relayPorts());
const relayPid = relay.child.pid;
const tcpAddr = relay.output.split('\n').map((l) => l.match(/^address: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/)).find(Boolean)[1];
const browser = await launchBrowser();
let bot;
let failed = false;
const problems = [];
try {
  const [pageA, pageB] = await twoReservedPages(browser, relay.url);
  for (const p of [pageA, pageB]) { await p.addInitScript(captureWasm); await reloadPage(p); }
  bot = new Bot(tcpAddr, join(tempDir('darkswap-soak-bot-'), 'identity.key'));
  const [idLine, firstBook] = [bot.next(/^peer id: (\S+)$/, 'peer id'), bot.next(/^book RUNE:SOAK\/BTC/, 'first book view')];
  const botId = (await idLine)[1];
  await firstBook;
  const idA = (await pageA.textContent('[data-testid=peer-id]')).trim();

  const expected = { tradesA: new Map(), tradesB: new Map(), liveA: new Map(), liveBot: new Map() };
  const samples = [];
  const started = Date.now();
  const deadline = started + opts.minutes * 60000;
  let nextSample = started;
  let nextReload = started + opts.reloadSecs * 1000;
  let reloadA = true;
  let round = 0;

  const sample = async () => {
    const body = await fetch(new URL('/metrics', relay.url)).then((r) => r.text());
    const [a, b] = [await pageMemory(pageA), await pageMemory(pageB)];
    samples.push({
      t: (Date.now() - started) / 1000,
      'page A JS heap (MiB)': a.heap / 1048576,
      'page B JS heap (MiB)': b.heap / 1048576,
      'page A wasm memory (MiB)': a.wasm / 1048576,
      'page B wasm memory (MiB)': b.wasm / 1048576,
      'relay RSS (MiB)': procStatus(relayPid) / 1048576,
      'relay descriptors': readdirSync(`/proc/${relayPid}/fd`).length,
      'relay connections': metric(body, 'darkswap_relay_connections_active'),
      'bot RSS (MiB)': procStatus(bot.child.pid) / 1048576,
    });
    const last = samples.at(-1);
    console.log(`sample t=${last.t.toFixed(0)}s ${Object.entries(last).filter(([k]) => k !== 't').map(([k, v]) => `${k}=${v.toFixed(1)}`).join(' ')}`);
  };

  while (Date.now() < deadline) {
    round += 1;
    if (Date.now() >= nextSample) { await sample(); nextSample += opts.sampleSecs * 1000; }

    // A makes; the bot takes part of it once its book shows it.
    const amountA = 1000 + 100 * (round % 10);
    const orderA = await makeOrder(pageA, 'sell', amountA, '0.5');
    expected.liveA.set(orderA, amountA);
    let seen;
    for (let i = 0; i < 100 && !seen; i++) { seen = (await bot.book()).get(orderA); if (!seen) await sleep(100); }
    if (!seen) throw new Error(`the bot never saw A's order ${orderA}`);
    const take = 100 + 10 * (round % 7);
    const tradeA = bot.next(new RegExp(`^trade ([0-9a-f]+) agreed Taker order=${orderA} `), 'agreement as taker');
    bot.send(`take ${PAIR} ${orderA} ${take}`);
    const idTA = (await tradeA)[1];
    await waitAgreed(pageA, idTA);
    expected.tradesA.set(idTA, take);
    expected.liveA.set(orderA, amountA - take);

    // The bot makes; B takes part of it.
    const placed = bot.next(/^placed ([0-9a-f]+) /, 'its order placed');
    bot.send(`make ${PAIR} buy 500 0.4`);
    const orderBot = (await placed)[1];
    expected.liveBot.set(orderBot, 500);
    const row = pageB.locator(`[data-testid=book-order][data-order="${orderBot}"]`);
    await row.waitFor({ timeout: T });
    const takeB = 50 + 10 * (round % 5);
    const tradeB = bot.next(new RegExp(`^trade ([0-9a-f]+) agreed Maker order=${orderBot} `), 'agreement as maker');
    await pageB.fill('[data-testid=take-amount]', String(takeB));
    await row.locator('[data-testid=take]').click();
    const idTB = (await tradeB)[1];
    await waitAgreed(pageB, idTB);
    expected.tradesB.set(idTB, takeB);
    expected.liveBot.set(orderBot, 500 - takeB);

    // The oldest orders go: A and the bot keep at most four live each.
    while (expected.liveA.size > 4) {
      const [oldA] = expected.liveA.keys();
      await pageA.click(`[data-testid=my-order][data-order="${oldA}"] [data-testid=cancel]`);
      await pageA.waitForSelector(`[data-testid=my-order][data-order="${oldA}"]`, { state: 'detached', timeout: T });
      expected.liveA.delete(oldA);
    }
    while (expected.liveBot.size > 4) {
      const [oldBot] = expected.liveBot.keys();
      const cancelled = bot.next(new RegExp(`^cancelled ${oldBot}$`), 'its cancel');
      bot.send(`cancel ${oldBot}`);
      await cancelled;
      expected.liveBot.delete(oldBot);
    }

    if (Date.now() >= nextReload) {
      await reloadPage(reloadA ? pageA : pageB);
      reloadA = !reloadA;
      nextReload += opts.reloadSecs * 1000;
    }
  }
  await sample();

  // The audit: both pages reload and show what they stored.
  await reloadPage(pageA);
  await reloadPage(pageB);
  await sleep(3000); // the republished orders reach the bot's book
  const audit = (what, ok, detail) => { if (!ok) problems.push(`${what}: ${detail}`); };
  for (const [page, name, all, role] of [[pageA, 'A', expected.tradesA, 'maker'], [pageB, 'B', expected.tradesB, 'taker']]) {
    // A page shows its newest MAX_TRADES_SHOWN (200) trades.
    const trades = new Map([...all].slice(-200));
    const shown = await agreedTrades(page);
    const ids = shown.map((t) => t.id);
    audit(`page ${name} trades duplicated`, new Set(ids).size === ids.length, `${ids.length - new Set(ids).size}`);
    const missing = [...trades.keys()].filter((id) => !ids.includes(id));
    const extra = ids.filter((id) => !trades.has(id));
    audit(`page ${name} trades lost`, missing.length === 0, missing.join(' '));
    audit(`page ${name} trades unexpected`, extra.length === 0, extra.join(' '));
    for (const t of shown) {
      if (trades.has(t.id)) {
        audit(`page ${name} trade ${t.id}`, t.role === role && t.amount === trades.get(t.id), `${t.role} ${t.amount}`);
      }
    }
  }
  const botTrades = [...bot.agreed.keys()];
  const all = new Set([...expected.tradesA.keys(), ...expected.tradesB.keys()]);
  audit('bot trades duplicated', bot.duplicates.length === 0, bot.duplicates.join(' '));
  audit('bot trades lost', [...all].every((id) => bot.agreed.has(id)), [...all].filter((id) => !bot.agreed.has(id)).join(' '));
  audit('bot trades unexpected', botTrades.every((id) => all.has(id)), botTrades.filter((id) => !all.has(id)).join(' '));

  const storedA = new Map((await myOrders(pageA)).map((o) => [o.id, o.amount]));
  const book = await bot.book();
  const ownBot = await bot.own();
  const same = (a, b) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
  const inBook = (maker) => new Map([...book].filter(([, o]) => o.maker === maker).map(([id, o]) => [id, o.amount]));
  audit('page A live orders', same(storedA, expected.liveA), `stored ${JSON.stringify([...storedA])} expected ${JSON.stringify([...expected.liveA])}`);
  audit("A's orders in the bot's book", same(inBook(idA), expected.liveA), JSON.stringify([...inBook(idA)]));
  audit('bot live orders', same(ownBot, expected.liveBot), `own ${JSON.stringify([...ownBot])} expected ${JSON.stringify([...expected.liveBot])}`);
  audit("the bot's orders in its book", same(inBook(botId), expected.liveBot), JSON.stringify([...inBook(botId)]));
  audit('bot errors', bot.errors.length === 0, bot.errors.join(' | '));

  // Slopes after warm-up (the first fifth of the run, at least one sample).
  const warm = samples.filter((s) => s.t >= Math.max(opts.minutes * 12, opts.sampleSecs));
  const keys = Object.keys(samples[0]).filter((k) => k !== 't');
  console.log(`\nsoak: ${opts.minutes} min, ${round} rounds, ${expected.tradesA.size + expected.tradesB.size} trades, ${samples.length} samples`);
  console.log('series: first → last sample, slope after warm-up (per hour)');
  for (const k of keys) {
    const s = slopePerHour(warm.map((p) => ({ t: p.t, v: p[k] })));
    console.log(`  ${k}: ${samples[0][k].toFixed(1)} → ${samples.at(-1)[k].toFixed(1)}, ${s >= 0 ? '+' : ''}${s.toFixed(1)}/h`);
  }
  writeFileSync(join(OUT, 'soak.json'), JSON.stringify({ opts, rounds: round, samples, problems }, null, 1));
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  bot?.child.stdin.end('quit\n');
  await browser.close();
  await stopRelay(relay);
}
if (problems.length) {
  console.error(`\naudit: ${problems.length} problem(s)`);
  for (const p of problems) console.error(`  ${p}`);
}
console.log(`\naudit: ${failed || problems.length ? 'FAILED' : 'no order or trade lost or duplicated'}`);
process.exit(failed || problems.length ? 1 : 0);
