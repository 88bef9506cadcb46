// server_openai.mjs: the official `openai` npm client against `cllm serve`
// (argv: base URL, API key). Chat and completions, stream and non-stream,
// embeddings, models. Prints "N passed, N failed"; exits 1 on failure.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30000 });
let passed = 0, failed = 0;
function check(name, cond, detail = "") {
  if (cond) passed++;
  else { failed++; console.log(`FAIL: ${name} ${detail}`); }
}
const messages = [{ role: "user", content: "the cat" }];
try {
  const chat = await client.chat.completions.create({ model: "m", messages, max_tokens: 12, temperature: 0 });
  check("chat non-stream", chat.choices[0].message.role === "assistant" && typeof chat.choices[0].message.content === "string"
        && chat.usage.completion_tokens >= 1, JSON.stringify(chat));
  const stream = await client.chat.completions.create({ model: "m", messages, max_tokens: 12, temperature: 0, stream: true,
                                                        stream_options: { include_usage: true } });
  let text = "", usage = null, finish = null, first = null;
  for await (const chunk of stream) {
    if (!first) first = chunk;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  check("chat stream: a role-only first chunk", first && first.choices[0].delta.role === "assistant"
        && first.choices[0].delta.content === "", JSON.stringify(first));
  check("chat stream equals non-stream (greedy)", text === chat.choices[0].message.content, `${JSON.stringify(text)}`);
  check("chat stream usage and finish", usage && usage.completion_tokens === chat.usage.completion_tokens && finish !== null);
  const cmpl = await client.completions.create({ model: "m", prompt: "the cat", max_tokens: 20, temperature: 0 });
  check("completion non-stream", cmpl.choices[0].text.startsWith(" sat on the mat"), JSON.stringify(cmpl.choices[0].text));
  const cs = await client.completions.create({ model: "m", prompt: "the cat", max_tokens: 20, temperature: 0, stream: true });
  let ctext = "";
  for await (const chunk of cs) ctext += chunk.choices[0]?.text ?? "";
  check("completion stream equals non-stream", ctext === cmpl.choices[0].text, JSON.stringify(ctext));
  const emb = await client.embeddings.create({ model: "m", input: ["the cat", "the dog"] });
  const v = emb.data[0].embedding;
  check("embeddings (client's default base64 decoded)", emb.data.length === 2 && v.length === 32
        && Math.abs(v.reduce((a, x) => a + x * x, 0) - 1) < 1e-4);
  const models = await client.models.list();
  check("models list", models.data.length === 1);
  let status = 0;
  try {
    await client.chat.completions.create({ model: "m", messages: [{ role: "wizard", content: "x" }] });
  } catch (e) { status = e.status; check("400 error parsed by the client", e.status === 400 && /role/.test(e.message), e.message); }
  check("bad role raised", status === 400);
  const bad = new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 });
  try { await bad.models.list(); check("wrong key raises", false); }
  catch (e) { check("wrong key -> AuthenticationError 401", e.status === 401); }
} catch (e) {
  check("no exception", false, String(e && e.stack || e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
