// Loads pages through the router's shared name APP.localhost in headless
// Chromium, each load in a fresh browser context (no cookies), and reports
// as JSON what happened: for a Vite app, whether its HMR WebSocket connected
// and which instance served the page; for a socket.io app, whether it got
// from long-polling to a WebSocket and which instances answered. One Vite
// load also edits the module of the instance that served it and waits for
// the hot update.
//
// Usage: node affinity_browser.js ROUTER_PORT LOADS VITE_APP SIO_APP VITE_DIRS
//   VITE_DIRS: instance=dir,instance=dir (where each Vite instance's main.js is)
const fs = require("fs");
const os = require("os");
const path = require("path");
const puppeteer = require("puppeteer-core");

const [port, loads, viteApp, sioApp, viteDirs] = process.argv.slice(2);
const dirs = Object.fromEntries(viteDirs.split(",").map((pair) => pair.split("=")));
const WAIT = 20000;

async function vite(browser, editAfter) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const log = [];
  page.on("console", (msg) => log.push(msg.text()));
  const result = { connected: false, instance: null, errors: [], updated: null };
  // Every failed answer but the favicon's, which the fixture has none of.
  page.on("response", (r) => {
    if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) {
      result.errors.push(`${r.status()} ${r.url()}`);
    }
  });
  try {
    await page.goto(`http://${viteApp}.localhost:${port}/`, { waitUntil: "load", timeout: WAIT });
    await page.waitForFunction(() => /instance \S+ v1/.test(document.body.innerText), { timeout: WAIT });
    result.instance = (await page.$eval("#app", (e) => e.textContent)).split(" ")[1];
    const deadline = Date.now() + WAIT;
    while (!log.some((l) => l.includes("[vite] connected")) && Date.now() < deadline) {
      if (log.some((l) => l.includes("failed to connect") || l.includes("Unexpected response"))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    result.connected = log.some((l) => l.includes("[vite] connected"));
    if (editAfter && result.connected) {
      const file = path.join(dirs[result.instance], "main.js");
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(" v1`", " v2`"));
      await page.waitForFunction(() => / v2$/.test(document.body.innerText.trim()), { timeout: WAIT });
      result.updated = true;
    }
  } catch (err) {
    result.errors.push(String(err));
  }
  result.errors.push(
    ...log.filter((l) => /error|failed/i.test(l) && !l.startsWith("Failed to load resource")),
  );
  await context.close();
  return result;
}

async function socketio(browser) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  let result;
  try {
    await page.goto(`http://${sioApp}.localhost:${port}/`, { waitUntil: "load", timeout: WAIT });
    await page.waitForFunction(() => window.result && window.result.state === "connected", { timeout: WAIT });
    result = await page.evaluate(() => window.result);
  } catch (err) {
    result = await page.evaluate(() => window.result).catch(() => ({}));
    result = { ...result, failure: String(err) };
  }
  await context.close();
  return result;
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "afs-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      `--user-data-dir=${profile}`],
  });
  const out = { vite: [], socketio: [] };
  try {
    for (let i = 0; i < Number(loads); i++) {
      out.vite.push(await vite(browser, i === Number(loads) - 1));
      out.socketio.push(await socketio(browser));
    }
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
