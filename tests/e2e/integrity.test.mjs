// The code that holds the keys (issue 17, item 8), in real Chromium against the real relay:
// - the page runs under its own Content-Security-Policy with no violation, and the policy holds
//   (no injected script, no eval, no inline style);
// - a copy whose module or JS glue was changed after the build does not start (SRI);
// - `darkswap release` signs a build and checks what a relay serves against the publisher;
// - the app loaded from another origin (a verified copy on a plain static server) trades with a
//   page served by the relay, through the relay named in `?relay=`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join } from 'node:path';
import {
  startRelay, stopRelay, relayPorts, tempDir, launchBrowser, follow, reserved, RELAY_BIN, WEB_DIR, HOST,
} from './harness.mjs';

const CLI_BIN = process.env.DARKSWAP_CLI_BIN ?? join(dirname(RELAY_BIN), 'darkswap');
const PAIR = 'RUNE:INTEGRITY/BTC';

let browser;
const relays = [];
const servers = [];
after(async () => {
  await browser?.close();
  for (const r of relays) await stopRelay(r);
  for (const s of servers) s.close();
});

async function relayServing(webDir) {
  const relay = await startRelay(tempDir(), await relayPorts(), [], webDir);
  relays.push(relay);
  return relay;
}

// A page in a context of its own that records every CSP violation and console message.
async function openPage() {
  browser ??= await launchBrowser();
  const context = await browser.newContext();
  // (Init scripts come through the DevTools protocol, outside the page's policy.)
  await context.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  page.errors = [];
  page.console = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => page.console.push(m.text()));
  return page;
}

const violations = (page) => page.evaluate(() => window.cspViolations);

// A copy of the built app with `change` applied to it.
function copyOfBuild(change = () => {}) {
  const dir = tempDir('darkswap-web-copy-');
  cpSync(WEB_DIR, dir, { recursive: true });
  change(dir);
  return dir;
}

const fileEnding = (dir, ending) => readdirSync(dir).find((f) => f.endsWith(ending));

function flipByte(file, at) {
  const bytes = readFileSync(file);
  bytes[at] ^= 0x01;
  writeFileSync(file, bytes);
}

function cli(...args) {
  return spawnSync(CLI_BIN, args, { encoding: 'utf8' });
}

test('the page runs under its Content-Security-Policy, and the policy holds', async () => {
  const relay = await relayServing(WEB_DIR);
  const response = await fetch(relay.url);
  assert.equal(response.headers.get('content-security-policy'), "frame-ancestors 'none'");
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
  const html = await response.text();
  const policy = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)"/)?.[1];
  assert.ok(policy, 'index.html carries its policy');
  assert.match(policy, /script-src 'self' 'wasm-unsafe-eval' 'sha256-[^']+' 'sha256-[^']+';/);
  assert.match(policy, /style-src 'self';/);
  assert.match(html, /fetch\('[^']+_bg\.wasm', \{ integrity: 'sha384-[^']+' \}\)/);

  const page = await openPage();
  await page.goto(relay.url);
  await page.waitForSelector(reserved, { timeout: 30000 });
  // A book with depth bars (an order of its own on a pair) renders without a violation.
  await follow(page, PAIR);
  await page.selectOption('[data-testid=order-side]', 'sell');
  await page.fill('[data-testid=order-amount]', '1000');
  await page.fill('[data-testid=order-price]', '0.5');
  await page.click('[data-testid=order-place]');
  await page.waitForSelector('[data-testid=level] svg.bar rect', { timeout: 15000 });
  assert.deepEqual(await violations(page), []);

  // Neither inline code nor eval is admitted (code evaluated through the DevTools protocol, as
  // this test's is, is exempt from the eval rule, so the policy's text is what shows it).
  assert.doesNotMatch(policy, /'unsafe-inline'|'unsafe-eval'|\*/);
  // What an injection would try: an inline script, an inline style, a foreign script.
  const tried = await page.evaluate(async () => {
    const inline = document.createElement('script');
    inline.textContent = 'window.injected = true';
    document.head.append(inline);
    const styled = document.createElement('div');
    styled.setAttribute('style', 'color: rgb(255, 0, 0)');
    document.body.append(styled);
    const foreign = document.createElement('script');
    foreign.src = 'http://127.0.0.1:9/evil.js';
    const loaded = await new Promise((ok) => {
      foreign.onload = () => ok('loaded');
      foreign.onerror = () => ok('blocked');
      document.head.append(foreign);
    });
    await new Promise((ok) => setTimeout(ok, 100));
    return { injected: window.injected === true, red: getComputedStyle(styled).color === 'rgb(255, 0, 0)', loaded };
  });
  assert.deepEqual(tried, { injected: false, red: false, loaded: 'blocked' });
  // Each was refused and reported as such.
  assert.deepEqual(await violations(page), [
    'script-src-elem inline', 'style-src-attr inline', 'script-src-elem http://127.0.0.1:9/evil.js',
  ]);
  assert.deepEqual(page.errors, []);
});

test('a copy whose module or JS glue changed after the build does not start', async () => {
  const glueOf = (d) => join(d, fileEnding(d, '.js'));
  const editIndex = (d, edit) => writeFileSync(join(d, 'index.html'), edit(readFileSync(join(d, 'index.html'), 'utf8')));
  const cases = [
    // One bit of a custom section: the module would still compile and run.
    ['module', '_bg.wasm', (d) => {
      const file = join(d, fileEnding(d, '_bg.wasm'));
      flipByte(file, readFileSync(file).length - 2);
    }],
    // Valid JavaScript that would run: bound by the import map and the preload together, and by
    // each alone (the other taken out of the copy's page).
    ['JS glue', '.js', (d) => writeFileSync(glueOf(d), `${readFileSync(glueOf(d), 'utf8')}\n;globalThis.tampered = true;\n`)],
    ['JS glue, import map only', '.js', (d) => {
      writeFileSync(glueOf(d), `${readFileSync(glueOf(d), 'utf8')}\n;globalThis.tampered = true;\n`);
      editIndex(d, (html) => html.replace(/<link rel="modulepreload"[^>]*>/, ''));
    }],
    ['JS glue, preload only', '.js', (d) => {
      writeFileSync(glueOf(d), `${readFileSync(glueOf(d), 'utf8')}\n;globalThis.tampered = true;\n`);
      editIndex(d, (html) => html.replace(/<script type="importmap">.*?<\/script>/, ''));
    }],
  ];
  for (const [what, ending, change] of cases) {
    const dir = copyOfBuild(change);
    const relay = await relayServing(dir);
    const page = await openPage();
    await page.goto(relay.url);
    const name = fileEnding(dir, ending);
    const refusal = (m) => m.startsWith("Failed to find a valid digest in the 'integrity' attribute") && m.includes(name);
    for (let i = 0; i < 200 && !page.console.some(refusal); i++) await page.waitForTimeout(100);
    assert.ok(page.console.some(refusal), `the changed ${what} was refused (console: ${page.console.join(' | ')})`);
    // Given time to start, it did not: no changed code ran, no relay state, no node.
    await page.waitForTimeout(3000);
    assert.equal(await page.evaluate(() => globalThis.tampered), undefined, `the changed ${what} ran`);
    assert.equal(await page.locator('[data-testid=relay-state]').count(), 0, `the app started with the changed ${what}`);
    await page.context().close();
  }
  // The same copy unchanged starts: the refusals above are the changes'.
  const relay = await relayServing(copyOfBuild());
  const page = await openPage();
  await page.goto(relay.url);
  await page.waitForSelector(reserved, { timeout: 30000 });
  await page.context().close();
});

test('a signed release checks against what a relay serves; a changed copy or another publisher does not', async () => {
  const signed = copyOfBuild();
  const key = join(tempDir(), 'publisher.key');
  const sign = cli('release', 'sign', '--dir', signed, '--key', key, '--create-key', '--version', 'e2e');
  assert.equal(sign.status, 0, sign.stderr);
  const publisher = sign.stdout.match(/ as (12D3Koo\w+):/)?.[1];
  assert.ok(publisher, sign.stdout);
  const other = cli('release', 'sign', '--dir', copyOfBuild(), '--key', join(tempDir(), 'other.key'), '--create-key', '--version', 'e2e');
  const otherPublisher = other.stdout.match(/ as (12D3Koo\w+):/)?.[1];

  const honest = await relayServing(signed);
  const ok = cli('release', 'verify', '--publisher', publisher, '--url', honest.url);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /verified: .* holds release "e2e" of 12D3Koo\w+, 4 files, all as signed/);
  const wrongKey = cli('release', 'verify', '--publisher', otherPublisher, '--url', honest.url);
  assert.notEqual(wrongKey.status, 0);
  assert.match(wrongKey.stderr, /not by the expected publisher/);

  // A relay serving the signed release with a changed module, or a changed page.
  const wasmChanged = copyOfBuild((d) => {
    cpSync(join(signed, 'release.txt'), join(d, 'release.txt'));
    flipByte(join(d, fileEnding(d, '_bg.wasm')), 100);
  });
  const pageChanged = copyOfBuild((d) => {
    cpSync(join(signed, 'release.txt'), join(d, 'release.txt'));
    const index = join(d, 'index.html');
    writeFileSync(index, readFileSync(index, 'utf8').replace('<title>DarkSwap</title>', '<title>DarkSwap</title><script src="/x.js"></script>'));
  });
  for (const [dir, file] of [[wasmChanged, '_bg.wasm'], [pageChanged, 'index.html']]) {
    const tampered = await relayServing(dir);
    const refused = cli('release', 'verify', '--publisher', publisher, '--url', tampered.url);
    assert.notEqual(refused.status, 0, `a changed ${file} passed`);
    assert.match(refused.stderr, new RegExp(`${file.replace('.', '\\.')} differs from the release`));
    const local = cli('release', 'verify', '--publisher', publisher, '--dir', dir);
    assert.notEqual(local.status, 0);
  }
});

test('the app from another origin trades with a page from the relay, through ?relay=', async () => {
  // A verified copy on a plain static server of the trader's own (no headers of the relay's).
  const copy = copyOfBuild();
  const key = join(tempDir(), 'publisher.key');
  const publisher = cli('release', 'sign', '--dir', copy, '--key', key, '--create-key', '--version', 'e2e').stdout.match(/ as (12D3Koo\w+):/)?.[1];
  assert.equal(cli('release', 'verify', '--publisher', publisher, '--dir', copy).status, 0);
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const name = path === '/' ? 'index.html' : path.slice(1);
    if (!readdirSync(copy).includes(name)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'Content-Type': types[extname(name)] ?? 'application/octet-stream' });
    res.end(readFileSync(join(copy, name)));
  });
  await new Promise((ok) => server.listen(0, HOST, ok));
  servers.push(server);
  const elsewhere = `http://${HOST}:${server.address().port}/`;

  const relay = await relayServing(WEB_DIR);
  const maker = await openPage();
  await maker.goto(relay.url);
  const taker = await openPage();
  await taker.goto(`${elsewhere}?relay=${encodeURIComponent(relay.url)}`);
  for (const p of [maker, taker]) await p.waitForSelector(reserved, { timeout: 30000 });
  await follow(maker, PAIR);
  await follow(taker, PAIR);
  await maker.selectOption('[data-testid=order-side]', 'sell');
  await maker.fill('[data-testid=order-amount]', '1000');
  await maker.fill('[data-testid=order-price]', '0.5');
  await maker.click('[data-testid=order-place]');
  const mine = maker.locator('[data-testid=my-order]');
  await mine.waitFor({ timeout: 15000 });
  const orderId = await mine.getAttribute('data-order');
  await taker.waitForSelector(`[data-testid=book-order][data-order="${orderId}"][data-mine="false"]`, { timeout: 15000 });
  await taker.fill('[data-testid=take-amount]', '400');
  await taker.locator(`[data-testid=book-order][data-order="${orderId}"] [data-testid=take]`).click();
  for (const p of [maker, taker]) {
    await p.locator('[data-testid=trade][data-state=agreed]').waitFor({ timeout: 20000 });
    assert.deepEqual(await violations(p), []);
    assert.deepEqual(p.errors, []);
  }
});
