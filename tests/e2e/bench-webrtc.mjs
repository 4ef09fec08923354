// Two pages on WebRTC-direct to the relay, timed: a first order from placing it to the relay
// accepting it (its metrics) and to the other page's book, and a reloaded page back to "reserved"
// (and on which transport). Run in the test namespace, several times:
//   scripts/netns-run env DARKSWAP_E2E_HOST=10.77.0.1 node tests/e2e/bench-webrtc.mjs [runs]
// (DARKSWAP_RELAY_BIN and DARKSWAP_WEB_DIR as for the e2e tests). Prints one line per run and
// the medians.
import {
  follow, launchBrowser, median, relayPorts, reserved, startRelay, stopRelay, tempDir,
  twoReservedPages,
} from './harness.mjs';

const runs = Number(process.argv[2] ?? 5);
const since = (t0) => Date.now() - t0;

async function acceptedOrders(relay) {
  const text = await (await fetch(`${relay.url}metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('darkswap_relay_order_messages_accepted_total{kind="order"}'));
  return Number(line?.split(' ').pop() ?? 0);
}

async function waitFor(check, limitMs) {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

const results = [];
for (let run = 1; run <= runs; run++) {
  const relay = await startRelay(tempDir(), await relayPorts());
  const browser = await launchBrowser();
  try {
    const [a, b] = await twoReservedPages(browser, relay.url);
    const transport = await a.getAttribute('[data-testid=relay-state]', 'data-transport');
    const pair = `RUNE:BENCH${String.fromCharCode(64 + run)}/BTC`;
    await follow(a, pair);
    await follow(b, pair);
    await a.fill('[data-testid=order-amount]', '1000');
    await a.fill('[data-testid=order-price]', '0.5');
    const t0 = Date.now();
    await a.click('[data-testid=order-place]');
    const atRelay = (await waitFor(async () => (await acceptedOrders(relay)) > 0, 30000)) ? since(t0) : NaN;
    const inB = (await waitFor(async () => (await b.locator('[data-testid=book-order]').count()) > 0, 30000)) ? since(t0) : NaN;
    const t1 = Date.now();
    await a.reload();
    await a.waitForSelector(reserved, { timeout: 30000 });
    const reload = since(t1);
    const after = await a.getAttribute('[data-testid=relay-state]', 'data-transport');
    results.push({ atRelay, inB, reload, after });
    console.log(`run ${run} (${transport}): first order at the relay ${atRelay} ms, in the other page ${inB} ms; reload to reserved ${reload} ms on ${after}`);
  } finally {
    await browser.close();
    await stopRelay(relay);
  }
}
const med = (k) => median(results.map((r) => r[k]));
const onWebrtc = results.filter((r) => r.after === 'webrtc-direct').length;
console.log(`median of ${runs}: first order at the relay ${med('atRelay')} ms, in the other page ${med('inB')} ms; reload to reserved ${med('reload')} ms (back on webrtc-direct in ${onWebrtc} of ${runs})`);
