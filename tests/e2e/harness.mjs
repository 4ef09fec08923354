// Shared e2e helpers: start the real relay binary and real Chromium (Debian's, via playwright-core).
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '..', '..');
export const RELAY_BIN = process.env.DARKSWAP_RELAY_BIN ?? join(root, 'target', 'debug', 'darkswap-relay');
export const WEB_DIR = process.env.DARKSWAP_WEB_DIR ?? join(root, 'web', 'dist');
// The address pages use to reach the relay: loopback, or the test namespace's own address.
export const HOST = process.env.DARKSWAP_E2E_HOST ?? '127.0.0.1';
// The transport pages must use to reach the relay: WebSocket on loopback, WebRTC-direct in the
// test namespace (set by whoever runs the tests there).
export const EXPECT_TRANSPORT = process.env.DARKSWAP_E2E_TRANSPORT ?? 'websocket';
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

// Any ports: the relay binds port 0 and startRelay reads which it got. (Picking free ports here
// and passing them raced with every connection the machine opened meanwhile: an ephemeral port
// could take one before the relay bound it, and the relay then could not listen.)
export async function relayPorts() {
  return { tcp: 0, ws: 0, webrtc: 0, http: 0 };
}

// The ports a started relay listens on, from what it prints it binds (`listening:`, which
// differs from its `address:` lines when it announces others) and its URL.
function boundPorts(output) {
  const port = (re) => Number(output.match(re)?.[1] ?? NaN);
  return {
    tcp: port(/^listening: \/ip4\/[^/]+\/tcp\/(\d+)$/m),
    ws: port(/^listening: \/ip4\/[^/]+\/tcp\/(\d+)\/ws$/m),
    webrtc: port(/^listening: \/ip4\/[^/]+\/udp\/(\d+)\/webrtc-direct/m),
    http: port(/^web app: http:\/\/[^/]*:(\d+)\//m),
  };
}

export function tempDir(prefix = 'darkswap-e2e-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

// Starts the relay and resolves once it prints "ready", with the ports it listens on. It serves
// the web app from `webDir` (the build by default), listening on every interface unless
// `listenIp` says otherwise.
export function startRelay(dataDir, ports, extra = [], webDir = WEB_DIR, listenIp = '0.0.0.0') {
  const args = [
    '--data-dir', dataDir, '--web-dir', webDir, '--listen-ip', listenIp,
    '--tcp-port', String(ports.tcp), '--ws-port', String(ports.ws),
    '--webrtc-port', String(ports.webrtc), '--http-port', String(ports.http), ...extra,
  ];
  const child = spawn(RELAY_BIN, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn,dtls=error,webrtc=error,webrtc_ice=error,webrtc_sctp=error' } });
  return new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`relay not ready in 20 s:\n${out}`)), 20000);
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`relay exited (${code}):\n${out}`)); });
    child.stdout.on('data', (d) => {
      out += d;
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        const bound = boundPorts(out);
        if (Object.values(bound).some(Number.isNaN)) {
          fail(new Error(`cannot read the relay's ports from:\n${out}`));
          return;
        }
        ok({ child, url: `http://${HOST}:${bound.http}/`, output: out, ports: bound });
      }
    });
  });
}

export function stopRelay(relay, signal = 'SIGTERM') {
  return new Promise((ok) => {
    if (relay.child.exitCode !== null || relay.child.signalCode !== null) return ok(relay.child.exitCode);
    relay.child.once('exit', (code) => ok(code));
    relay.child.kill(signal);
  });
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Host ICE candidates with real addresses (inside the test namespace), not mDNS names.
      '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
}

export const reserved = '[data-testid=relay-state][data-state=reserved]';

// Milliseconds from navigation to "reserved".
export async function timeToReserved(page, url, timeout = 30000) {
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector(reserved, { timeout });
  return Date.now() - t0;
}

// Two traders: pages in separate browser contexts (separate IndexedDB, so separate identities),
// both loaded from `url` and holding a reservation. Page errors are logged.
export async function twoReservedPages(browser, url) {
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    pages.push(page);
  }
  await Promise.all(pages.map((p) => p.goto(url)));
  await Promise.all(pages.map((p) => p.waitForSelector(reserved, { timeout: 30000 })));
  return pages;
}

// Opens one of the page's detail panels (relay, access, identity, peers, metrics) from the status
// bar, unless it is open already.
export async function openPanel(page, name) {
  const toggle = page.locator(`[data-testid=panel-toggle][data-panel=${name}]`);
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await page.locator(`[data-testid=panel][data-panel=${name}]`).waitFor();
}

// Follows `pair` in the page (types it, presses Show) and waits for its book.
export async function follow(page, pair) {
  await page.fill('[data-testid=pair-input]', pair);
  await page.click('[data-testid=pair-follow]');
  await page.waitForSelector(`[data-testid=book][data-pair="${pair}"]`, { timeout: 15000 });
}

// The median of the finite numbers in `values` (NaN when there are none).
export function median(values) {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// A TCP forwarder on loopback that delivers every chunk `oneWayMs` late in each direction: a
// relay far away (this machine's kernel has no netem). A relay behind it announces the
// forwarder's address (`--external-addr`), so pages reach and measure it only through the
// delay; set `target` to the relay's port once it has started (connections before are closed).
export async function startDelay(oneWayMs) {
  const sockets = new Set();
  const delay = { port: 0, target: 0, close: null };
  const later = (fn) => setTimeout(fn, oneWayMs);
  const server = createServer((inbound) => {
    if (!delay.target) { inbound.destroy(); return; }
    const outbound = connect(delay.target, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    // Timers of one duration fire in the order they were set: the bytes keep their order.
    const pipe = (from, to) => {
      from.on('data', (chunk) => later(() => { if (!to.destroyed) to.write(chunk); }));
      from.on('end', () => later(() => to.end()));
      from.on('close', () => later(() => to.destroy()));
    };
    pipe(inbound, outbound);
    pipe(outbound, inbound);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  delay.port = server.address().port;
  delay.close = () => { for (const s of sockets) s.destroy(); server.close(); };
  return delay;
}
