// server_cors.mjs: a page served from another origin (a second loopback
// port, started here) calls `cllm serve --cors ORIGIN --api-key K` from
// headless Chromium: with the key (a preflighted POST, streamed and not) and
// without (a 401 the page can read). argv: API base URL, chromium path, key.
// Prints "N passed, N failed".
import { createServer } from "node:http";
import { check, runPage } from "./browser.mjs";

const [apiURL, exe, key] = process.argv.slice(2);
const site = createServer((req, res) => { res.writeHead(200, { "Content-Type": "text/html" }); res.end("<!doctype html><p>other origin</p>"); });
await new Promise((r) => site.listen(0, "127.0.0.1", r));
const pageURL = `http://127.0.0.1:${site.address().port}`;
await runPage(exe, async (page) => {
  await page.goto(pageURL + "/");
  const out = await page.evaluate(async ([api, key]) => {
    const body = JSON.stringify({ messages: [{ role: "user", content: "the cat" }], max_tokens: 6, temperature: 0 });
    const h = { "Content-Type": "application/json", Authorization: `Bearer ${key}` };
    const r1 = await fetch(api + "/v1/chat/completions", { method: "POST", headers: h, body });
    const j1 = await r1.json();
    const r2 = await fetch(api + "/v1/chat/completions", { method: "POST", headers: h,
      body: JSON.stringify({ ...JSON.parse(body), stream: true }) });
    const sse = await r2.text();
    const r3 = await fetch(api + "/v1/models", { headers: { Authorization: "Bearer wrong" } });
    return { s1: r1.status, text: j1.choices?.[0]?.message?.content, s2: r2.status, sse, s3: r3.status, e3: (await r3.json()).error?.type };
  }, [apiURL, key]);
  check("cross-origin POST with the key (preflighted): 200", out.s1 === 200 && typeof out.text === "string", JSON.stringify(out));
  check("cross-origin stream readable, ends with [DONE]", out.s2 === 200 && out.sse.endsWith("data: [DONE]\n\n"), out.sse.slice(-80));
  check("cross-origin wrong key: a readable 401", out.s3 === 401 && out.e3 === "authentication_error", JSON.stringify(out));
}, () => site.close());
