// browser.mjs: the headless Chromium the page tests use (Debian's
// `chromium` through playwright-core, a throw-away profile), the check
// counter they print as "N passed, N failed", and runPage, their frame.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const tally = { passed: 0, failed: 0 };
export function check(name, cond, detail = "") {
  if (cond) tally.passed++;
  else { tally.failed++; console.log(`FAIL: ${name} ${detail}`); }
}

// Resolves to { ctx, close }: a persistent context in a fresh profile; close() ends it and removes the profile.
export async function launch(exe) {
  const profile = mkdtempSync(join(tmpdir(), "cllm-chromium-"));
  let ctx = null;
  const close = async () => {
    if (ctx) await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: exe, headless: true, timeout: 60000,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  } catch (e) { await close(); throw e; }
  return { ctx, close };
}

// Runs body(page) on the first page of a fresh browser: an exception is one
// failed check; the browser is always closed (then cleanup runs), the tally
// printed as "N passed, N failed", and the process exits 1 when any check failed.
export async function runPage(exe, body, cleanup = () => {}) {
  let browser = null;
  try {
    browser = await launch(exe);
    await body(browser.ctx.pages()[0] ?? await browser.ctx.newPage());
  } catch (e) {
    check("chromium drove the page", false, String(e && e.stack || e));
  } finally {
    if (browser) await browser.close();
    cleanup();
  }
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exit(tally.failed ? 1 : 0);
}
