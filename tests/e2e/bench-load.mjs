// Page load → "reserved" in headless Chromium, median of N fresh loads (new browser context each
// time: new identity, cold IndexedDB, cold connection). Prints figures; not a pass/fail test.
import { launchBrowser, relayPorts, startRelay, stopRelay, tempDir, timeToReserved, HOST } from './harness.mjs';

const runs = Number(process.env.RUNS ?? 10);
const relay = await startRelay(tempDir(), await relayPorts());
const browser = await launchBrowser();
const times = [];
let transport = '';
try {
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    times.push(await timeToReserved(page, relay.url));
    transport = await page.getAttribute('[data-testid=relay-state]', 'data-transport');
    await ctx.close();
  }
} finally {
  await browser.close();
  await stopRelay(relay);
}
const sorted = [...times].sort((a, b) => a - b);
const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
console.log(`host ${HOST}, transport ${transport}: page load -> reserved over ${runs} loads: median ${median} ms, min ${sorted[0]} ms, max ${sorted.at(-1)} ms (${times.join(', ')})`);
