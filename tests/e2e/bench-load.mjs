// Page load → "reserved" in headless Chromium (until the page's DOM says so, by the page's own
// clock: Playwright's wait polls and would add up to half a second), median of N fresh loads (new browser context each
// time: new identity, cold IndexedDB, cold connection), and where the time goes: each step's
// median, from the page's own User Timing marks (web/src/timing.rs) and the browser's resource
// timing. Prints figures; not a pass/fail test.
import {
  launchBrowser, median, relayPorts, startRelay, stopRelay, tempDir, timeToReserved, HOST,
} from './harness.mjs';

const runs = Number(process.env.RUNS ?? 10);
// Each step ends at the named point; its time is from the end of the step before.
const STEPS = [
  ['html', 'the page itself (navigation response end)'],
  ['wasm fetch', 'the .wasm downloaded (resource response end)'],
  ['compile', 'the module compiled and running (darkswap:started)'],
  ['identity', 'identity key from IndexedDB or made (darkswap:identity)'],
  ['relay-info', 'relay-info fetched (darkswap:relay-info)'],
  ['node', 'credentials read, node running (darkswap:node-running)'],
  ['to dial', 'the first dial out (darkswap:dialing)'],
  ['dial', 'connection to the relay up (darkswap:connected)'],
  ['auth', 'level granted (darkswap:granted)'],
  ['reserve', 'reservation held (darkswap:reserved)'],
  ['render', 'the page\'s DOM says "reserved" (a mutation observer\'s mark)'],
  ['seen', 'the test sees it (Playwright\'s wait)'],
];

// The navigation's start (ms since the epoch), then the times (ms since then) at which each step
// ended, read in the page.
function stepEnds() {
  const nav = performance.getEntriesByType('navigation')[0];
  const wasm = performance.getEntriesByType('resource').find((r) => r.name.endsWith('.wasm'));
  const mark = (n) => performance.getEntriesByName(`darkswap:${n}`, 'mark')[0]?.startTime ?? null;
  return [performance.timeOrigin, nav?.responseEnd ?? null, wasm?.responseEnd ?? null, mark('started'), mark('identity'),
    mark('relay-info'), mark('node-running'), mark('dialing'), mark('connected'), mark('granted'), mark('reserved'),
    performance.getEntriesByName('dom:reserved', 'mark')[0]?.startTime ?? null];
}


const relay = await startRelay(tempDir(), await relayPorts());
const browser = await launchBrowser();
const times = [];
const steps = STEPS.map(() => []);
const before = [];
const shown = [];
let transport = '';
try {
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    // Marks the moment the page's DOM says "reserved" (set up before any page script runs).
    await page.addInitScript(() => {
      new MutationObserver((_, observer) => {
        if (document.querySelector('[data-testid=relay-state][data-state=reserved]')) {
          performance.mark('dom:reserved');
          observer.disconnect();
        }
      }).observe(document, { subtree: true, childList: true, attributes: true });
    });
    const t0 = Date.now();
    times.push(await timeToReserved(page, relay.url));
    const shownAt = Date.now();
    transport = await page.getAttribute('[data-testid=relay-state]', 'data-transport');
    const [origin, ...ends] = await page.evaluate(stepEnds);
    ends.push(shownAt - origin);
    // Before the navigation started (a new page's set-up in the browser).
    before.push(origin - t0);
    // The figure: from the test's goto to the DOM saying "reserved", by the page's own clock.
    const domReserved = ends[ends.length - 2];
    if (domReserved !== null) shown.push(origin - t0 + domReserved);
    let previous = 0;
    ends.forEach((end, k) => {
      if (end === null) return;
      steps[k].push(end - previous);
      previous = end;
    });
    await ctx.close();
  }
} finally {
  await browser.close();
  await stopRelay(relay);
}
const sorted = [...shown].sort((a, b) => a - b);
console.log(`host ${HOST}, transport ${transport}: page load -> reserved over ${runs} loads: median ${median(shown).toFixed(0)} ms, min ${sorted[0].toFixed(0)} ms, max ${sorted.at(-1).toFixed(0)} ms (${shown.map((t) => t.toFixed(0)).join(', ')})`);
console.log(`  (from the test's goto to the page's DOM saying "reserved"; the test itself notices a median ${median(times)} ms after its goto, Playwright polling the page)`);
console.log(`  where the time goes (median per step, ms); ${median(before).toFixed(0)} ms pass before the navigation starts:`);
STEPS.forEach(([name, what], k) => {
  const v = steps[k];
  console.log(`    ${name.padEnd(11)} ${v.length ? median(v).toFixed(0).padStart(6) : '     -'}  ${what}${v.length < runs ? ` (seen in ${v.length} of ${runs})` : ''}`);
});
