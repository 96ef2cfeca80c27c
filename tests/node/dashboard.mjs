// Drives the agentfs dashboard in Debian's headless Chromium for
// tests/dashboard_browser.rs.
//
//   node dashboard.mjs URL
//
// Opens URL, waits until the page's event stream is connected, prints
// "ready", then answers commands read one per line on stdin with one line
// on stdout ("ok ..." or "error ..."). Every wait gives up after WAIT_MS.
//
//   listed KEY         until the table has a row for KEY (APP/INSTANCE)
//   gone KEY           until it has none
//   requests KEY N     until KEY's row counts N requests
//   open KEY           opens KEY's last requests
//   text KEY           the text of KEY's row
//   screenshot PATH    saves the page as a PNG
//   loads              how many times the page was loaded (1: never reloaded)
//   quit
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import puppeteer from 'puppeteer-core';

const WAIT_MS = 30_000;
const url = process.argv[2];
if (!url) {
  console.log('error usage: node dashboard.mjs URL');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'agentfs-chromium-'));
const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  userDataDir: profile,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // The router is on loopback: a proxy from the environment must not come between.
    '--no-proxy-server',
  ],
});

let loads = 0;
let exitCode = 0;
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 640 });
  page.on('load', () => { loads += 1; });
  await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
  await page.waitForFunction(
    () => document.getElementById('live')?.textContent === 'Live',
    { timeout: WAIT_MS },
  );
  console.log('ready');
  exitCode = await serve(page);
} catch (err) {
  console.log(`error ${String(err).split('\n')[0]}`);
  exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);

/** Answers commands until "quit" or the end of stdin; the exit status. */
async function serve(page) {
  const row = (key) => {
    if (!/^[a-z0-9-]+\/[a-z0-9-]+$/.test(key)) throw new Error(`not APP/INSTANCE: ${key}`);
    return `tbody[data-key="${key}"]`;
  };
  const wait = (fn, ...args) => page.waitForFunction(fn, { timeout: WAIT_MS, polling: 'mutation' }, ...args);
  const commands = {
    listed: (key) => wait((sel) => document.querySelector(sel) !== null, row(key)),
    gone: (key) => wait((sel) => document.querySelector(sel) === null, row(key)),
    requests: (key, n) => wait(
      (sel, want) => document.querySelector(`${sel} td.requests`)?.textContent === want,
      row(key), n,
    ),
    open: (key) => page.$eval(`${row(key)} details`, (details) => { details.open = true; }),
    text: (key) => page.$eval(row(key), (body) => body.innerText.replace(/\s+/g, ' ').trim()),
    screenshot: (path) => page.screenshot({ path, fullPage: true }),
    loads: () => loads,
  };
  for await (const line of createInterface({ input: process.stdin })) {
    const [name, ...args] = line.trim().split(/\s+/);
    if (name === 'quit') return 0;
    const command = commands[name];
    if (!command) {
      console.log(`error unknown command ${name}`);
      continue;
    }
    try {
      const answer = await command(...args);
      console.log(typeof answer === 'string' || typeof answer === 'number' ? `ok ${answer}` : 'ok');
    } catch (err) {
      console.log(`error ${name} ${args.join(' ')}: ${String(err).split('\n')[0]}`);
    }
  }
  return 0;
}
