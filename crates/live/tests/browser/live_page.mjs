// Loads the live market page in headless Chromium (Debian's, through playwright-core) and
// waits for its ladder and trades tape to show what the test produced; with ORDER_TICKET=1 it
// also places an order from the ticket and waits for its notification. Saves a screenshot.
//
// Env: URL (the page, with any #key=..&secret=.. fragment), SYMBOL (default BTC-USD),
// EXPECT_TRADE_PRICE (a price the tape must show), EXPECT_NOTE (text a notification must show),
// EXPECT_CANDLES=1 (the chart has a candle), ORDER_TICKET=1 (+ TICKET_SIDE, TICKET_PRICE, TICKET_QTY), SCREENSHOT (png path),
// CHROMIUM (default /usr/bin/chromium), TIMEOUT_MS (default 60000).
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// CommonJS resolution honours NODE_PATH (ES module imports do not).
const { chromium } = createRequire(import.meta.url)("playwright-core");
const env = process.env;
const url = env.URL;
if (!url) throw new Error("URL is not set");
const symbol = env.SYMBOL || "BTC-USD";
const timeout = Number(env.TIMEOUT_MS || 60000);
const screenshot = env.SCREENSHOT || join(tmpdir(), "tradestream-live-page.png");
const profile = mkdtempSync(join(tmpdir(), "tradestream-chromium-"));

// A fresh profile directory (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let failed = false;
const page = browser.pages()[0] || (await browser.newPage());
page.on("console", (m) => console.log(`[page ${m.type()}] ${m.text()}`));
page.on("pageerror", (e) => { console.log(`[page error] ${e.message}`); });
try {
  await page.goto(url, { timeout });
  await page.waitForSelector(`#symbol option[value="${symbol}"]`, { state: "attached", timeout });
  if ((await page.inputValue("#symbol")) !== symbol) await page.selectOption("#symbol", symbol);
  await page.waitForSelector('#status[data-state="live"]', { timeout });
  console.log("stream: live");
  await page.waitForSelector("#bids tr.level", { timeout });
  await page.waitForSelector("#asks tr.level", { timeout });
  console.log(`ladder: ${await page.locator("#bids tr.level").count()} bids, ${await page.locator("#asks tr.level").count()} asks`);
  await page.waitForSelector("#trades tr", { timeout });
  if (env.EXPECT_TRADE_PRICE) {
    await page.waitForFunction(
      (p) => [...document.querySelectorAll("#trades tr td:nth-child(2)")].some((td) => td.textContent === p),
      env.EXPECT_TRADE_PRICE,
      { timeout },
    );
  }
  console.log(`tape: ${await page.locator("#trades tr").count()} trades, first ${await page.locator("#trades tr").first().innerText()}`);
  if (env.EXPECT_CANDLES === "1") {
    await page.waitForFunction(() => Number(document.querySelector("#chart").dataset.candles || 0) > 0, null, { timeout });
    console.log(`chart: ${await page.getAttribute("#chart", "data-candles")} candles`);
  }
  if (env.EXPECT_NOTE) {
    await page.waitForFunction(
      (t) => [...document.querySelectorAll("#notifications li")].some((li) => li.textContent.includes(t)),
      env.EXPECT_NOTE,
      { timeout },
    );
    console.log(`notification: ${env.EXPECT_NOTE}`);
  }
  if (env.ORDER_TICKET === "1") {
    await page.selectOption("#t-side", env.TICKET_SIDE || "buy");
    await page.selectOption("#t-type", "limit");
    await page.fill("#t-price", env.TICKET_PRICE || "100.00");
    await page.fill("#t-qty", env.TICKET_QTY || "1");
    await page.click("#t-submit");
    await page.waitForFunction(() => document.querySelector("#t-result").dataset.status, null, { timeout });
    const status = await page.getAttribute("#t-result", "data-status");
    const orderId = await page.getAttribute("#t-result", "data-order-id");
    console.log(`ticket: ${await page.innerText("#t-result")}`);
    if (status !== "202") throw new Error(`the order was answered ${status}`);
    await page.waitForFunction(
      (id) => [...document.querySelectorAll("#notifications li")].some((li) => li.textContent.includes(id)),
      orderId,
      { timeout },
    );
    console.log(`ticket: notification for ${orderId}: ${await page.locator("#notifications li").first().innerText()}`);
  }
} catch (e) {
  failed = true;
  console.log(`FAILED: ${e.message}`);
  console.log(`status: ${await page.textContent("#status").catch(() => "?")}`);
} finally {
  await page.screenshot({ path: screenshot, fullPage: true }).catch((e) => console.log(`no screenshot: ${e.message}`));
  console.log(`screenshot: ${screenshot}`);
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
