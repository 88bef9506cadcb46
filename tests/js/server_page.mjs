// server_page.mjs: the chat page at / driven in headless Chromium (Debian's
// `chromium`, through playwright-core): type a message, send it, and see
// the streamed reply appear; the stop button and the conversation kept in
// the page. argv: base URL, chromium path. Prints "N passed, N failed".
import { check, runPage } from "./browser.mjs";

const [baseURL, exe] = process.argv.slice(2);
await runPage(exe, async (page) => {
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(baseURL)) external.push(r.url()); });
  await page.goto(baseURL + "/");
  await page.fill("#temperature", "0");
  await page.fill("#max_tokens", "24");
  await page.fill("#system", "be brief");
  await page.fill("#input", "the cat");
  await page.click("#send");
  const reply = page.locator(".msg.assistant").first();
  await page.waitForFunction(() => document.querySelector(".msg.assistant")?.dataset.state === "done", null, { timeout: 30000 });
  const text = await reply.textContent();
  check("the streamed reply appears", text.length > 0, JSON.stringify(text));
  check("the user message is shown", (await page.locator(".msg.user").first().textContent()) === "the cat");
  // Same request through the API: the page's greedy reply must equal it.
  const api = await page.evaluate(async () => {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "system", content: "be brief" }, { role: "user", content: "the cat" }],
                             temperature: 0, top_p: 0.95, max_tokens: 24 }) });
    return (await r.json()).choices[0].message.content;
  });
  check("the page shows the model's reply", text === api, `${JSON.stringify(text)} vs ${JSON.stringify(api)}`);
  // Second turn: the conversation is kept (two user messages shown).
  await page.fill("#input", "the dog");
  await page.click("#send");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant").length === 2
    && document.querySelectorAll(".msg.assistant")[1].dataset.state === "done", null, { timeout: 30000 });
  check("the conversation is kept", (await page.locator(".msg.user").count()) === 2);
  check("no external requests", external.length === 0, external.join(" "));
});
