// chat_page_context.mjs: the chat page at a small context, in headless
// Chromium (tests/test_chat_page.sh). The model's name and description show;
// old turns are trimmed to fit the context the way `cllm chat` trims them; a
// message too long for the context fails with an error note (checked by the
// page, and, with the page's token count made unavailable, by the server's
// 400), is not sent again, and the next messages succeed; no reply bubble
// is ever left empty. argv: base URL, chromium path, expected model name,
// expected description (a substring), screenshot directory.
// Prints "N passed, N failed".
import { check, runPage } from "./browser.mjs";
import { join } from "node:path";

const [baseURL, exe, wantName, wantDesc, shots] = process.argv.slice(2);
const sent = []; // bodies of the chat requests, in order
let shotN = 0;
async function shot(page, name) {
  const path = join(shots, `${String(++shotN).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}
const lastSent = () => JSON.parse(sent[sent.length - 1]).messages.map((m) => m.content);
async function sendAndWait(page, text) {
  const before = await page.locator(".msg.user").count();
  await page.fill("#input", text);
  await page.click("#send");
  // the turn is over when the send button is enabled again after the new user bubble
  await page.waitForFunction((n) => document.querySelectorAll(".msg.user").length === n + 1
    && !document.getElementById("send").disabled, before, { timeout: 30000 });
  return page.locator(".msg.user").nth(before);
}
async function noEmptyBubble(page, when) {
  const texts = await page.locator(".msg.assistant").allTextContents();
  check(`no empty reply bubble (${when})`, texts.every((t) => t.trim() !== ""), JSON.stringify(texts));
}
await runPage(exe, async (page) => {
  await page.setViewportSize({ width: 1000, height: 700 });
  page.on("request", (r) => { if (r.url().endsWith("/v1/chat/completions")) sent.push(r.postData()); });
  await page.goto(baseURL + "/");
  await page.waitForFunction(() => document.getElementById("context").textContent !== "", null, { timeout: 10000 });
  const name = await page.locator("#model-name").textContent();
  const desc = await page.locator("#model-desc").textContent();
  check("the model's name shows", name === wantName, JSON.stringify(name));
  check("what the model was trained to do shows", desc.includes(wantDesc), JSON.stringify(desc));
  check("the context size shows", (await page.locator("#context").textContent()).includes("64-token context"));
  await page.fill("#temperature", "0");
  await page.fill("#max_tokens", "8");

  // 1. Turns until the conversation no longer fits: the oldest are dropped.
  const first = "the cat sat";
  let u = await sendAndWait(page, first);
  check("the first reply arrives", (await page.locator(".msg.assistant").last().getAttribute("data-state")) === "done");
  await sendAndWait(page, "the dog ran");
  await shot(page, "two-turns");
  for (const t of ["the cat ran to", "the dog sat on", "the mat and the log"]) u = await sendAndWait(page, t);
  const notes = await page.locator(".msg.note").allTextContents();
  check("old turns are trimmed with a notice", notes.some((n) => n.includes("dropped the oldest turn")), JSON.stringify(notes));
  check("trimmed turns are marked", (await page.locator(".msg.user.trimmed").count()) > 0);
  check("the trimmed first turn is not sent", !lastSent().includes(first), JSON.stringify(lastSent()));
  check("the turn after trimming succeeds", (await page.locator(".msg.assistant").last().getAttribute("data-state")) === "done");
  check("no error while trimming", (await page.locator(".msg.error").count()) === 0);
  await noEmptyBubble(page, "trimming");
  await shot(page, "trimmed");

  // 2. A message longer than the context: the page refuses it with a note.
  const long = "the cat sat on the mat. ".repeat(5);
  const nSent = sent.length;
  u = await sendAndWait(page, long);
  check("a too-long message is an error note", (await page.locator(".msg.error").count()) === 1);
  check("the error names the context", (await page.locator(".msg.error").last().textContent()).includes("the context holds 64"),
        await page.locator(".msg.error").last().textContent());
  check("the failed message is marked", (await u.getAttribute("class")).includes("failed"));
  check("the page did not send it", sent.length === nSent);
  u = await sendAndWait(page, "the dog");
  check("the next message succeeds", (await page.locator(".msg.assistant").last().getAttribute("data-state")) === "done");
  check("the failed message is not resent", !lastSent().includes(long), JSON.stringify(lastSent()));
  await noEmptyBubble(page, "page-side overflow");

  // 3. The same with the token count unavailable (an older server): the
  // server's context_length_exceeded error, then recovery.
  await page.route("**/apply-template", (r) => r.fulfill({ status: 404, body: "{}" }));
  u = await sendAndWait(page, long);
  const err = await page.locator(".msg.error").last().textContent();
  check("the server's overflow error is shown", (await page.locator(".msg.error").count()) === 2 && err.includes("context window"), err);
  check("the server-refused message is marked", (await u.getAttribute("class")).includes("failed"));
  const carrying = sent.slice(nSent).filter((b) => JSON.parse(b).messages.some((m) => m.content === long)).length;
  check("the refused message was sent once", carrying === 1, String(carrying));
  await noEmptyBubble(page, "server-side overflow");
  await shot(page, "overflow-errors");
  await page.unroute("**/apply-template");
  await sendAndWait(page, "the cat");
  check("a later message succeeds", (await page.locator(".msg.assistant").last().getAttribute("data-state")) === "done");
  check("the refused message is not resent", !lastSent().includes(long), JSON.stringify(lastSent()));
  await sendAndWait(page, "안녕하세요, 고양이");
  check("a Korean message is shown", (await page.locator(".msg.user").last().textContent()) === "안녕하세요, 고양이");
  check("no bubble is left streaming", (await page.locator('.msg.assistant[data-state="streaming"]').count()) === 0);
  await noEmptyBubble(page, "the end");
  await shot(page, "final");
});
