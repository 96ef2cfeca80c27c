// Loads a Vite page over https in headless Chromium with no certificate
// flags (the CA must be trusted through $HOME/.pki/nssdb), and reports as
// JSON: the page's protocol (nextHopProtocol), whether Vite's HMR WebSocket
// connected and the status its handshake got (200: over HTTP/2), and
// whether an edit to main.js hot-updated the page.
//
// Usage: HOME=DIR node https_browser.js URL MAIN_JS
const fs = require("fs");
const os = require("os");
const path = require("path");
const puppeteer = require("puppeteer-core");

const [url, mainJs] = process.argv.slice(2);
const WAIT = 20000;

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "afs-https-"));
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-dev-shm-usage"],
  });
  const result = { protocol: null, text: null, connected: false, updated: false, errors: [] };
  try {
    const page = await browser.newPage();
    // How the HMR WebSocket's handshake was answered: 101 over HTTP/1.1,
    // 200 over HTTP/2 (an extended CONNECT, RFC 8441).
    const cdp = await page.createCDPSession();
    await cdp.send("Network.enable");
    result.wsStatus = [];
    cdp.on("Network.webSocketHandshakeResponseReceived", (e) => result.wsStatus.push(e.response.status));
    const log = [];
    page.on("console", (msg) => log.push(msg.text()));
    page.on("response", (r) => {
      if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) result.errors.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(url, { waitUntil: "load", timeout: WAIT });
    await page.waitForFunction(() => / v1$/.test(document.body.innerText.trim()), { timeout: WAIT });
    result.text = (await page.$eval("#app", (e) => e.textContent)).trim();
    result.protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    const deadline = Date.now() + WAIT;
    while (!log.some((l) => l.includes("[vite] connected")) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    result.connected = log.some((l) => l.includes("[vite] connected"));
    if (result.connected) {
      fs.writeFileSync(mainJs, fs.readFileSync(mainJs, "utf8").replace(" v1`", " v2`"));
      await page.waitForFunction(() => / v2$/.test(document.body.innerText.trim()), { timeout: WAIT });
      result.updated = true;
    }
    result.errors.push(...log.filter((l) => /error|failed/i.test(l) && !l.startsWith("Failed to load resource")));
  } catch (err) {
    result.errors.push(String(err));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result));
})();
