// browser.mjs: the headless Chromium both page tests use (Debian's
// `chromium` through playwright-core, a throw-away profile), and the check
// counter they print as "N passed, N failed".
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
