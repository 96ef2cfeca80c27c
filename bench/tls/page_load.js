// Cold page loads in headless Chromium: each load in a fresh browser
// context with the cache disabled, URLs interleaved load by load. Prints
// JSON: per URL, every load's time (navigation start to the load event,
// after which every module has run) and the protocol it came over.
//
// Usage: HOME=DIR node page_load.js RUNS URL...   (HOME: whose NSS database
// trusts agentfs's CA, for https URLs). Each page must end up showing
// "ready" in #app.
const fs = require("fs");
const os = require("os");
const path = require("path");
const puppeteer = require("puppeteer-core");

const [runs, ...urls] = process.argv.slice(2);
const WAIT = 120000;

async function load(browser, url) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setCacheEnabled(false);
  await page.goto(url, { waitUntil: "load", timeout: WAIT });
  await page.waitForFunction(() => document.getElementById("app").textContent.startsWith("ready"), { timeout: WAIT });
  const timing = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    return { ms: nav.loadEventEnd - nav.startTime, protocol: nav.nextHopProtocol };
  });
  await context.close();
  return timing;
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "afs-pageload-"));
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage"],
  });
  const results = Object.fromEntries(urls.map((u) => [u, { ms: [], protocol: null }]));
  try {
    for (const url of urls) await load(browser, url); // warm-up: Vite transforms on first request
    for (let run = 0; run < Number(runs); run++) {
      for (const url of urls) {
        const t = await load(browser, url);
        results[url].ms.push(Math.round(t.ms));
        results[url].protocol = t.protocol;
      }
    }
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(results));
})();
