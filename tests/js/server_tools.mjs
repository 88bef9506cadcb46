// server_tools.mjs: the official `openai` npm client's tool-calling flow
// against `cllm serve` (argv: base URL): the request with tools, the
// assistant's tool_calls, the function run here, its result sent back as a
// role "tool" message, the final answer; then the same call streamed, its
// tool_calls deltas joined as the client's docs do. Prints "N passed, N
// failed"; exits 1 on failure.
import OpenAI from "openai";

const [baseURL] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 120000 });
let passed = 0, failed = 0;
function check(name, cond, detail = "") {
  if (cond) passed++;
  else { failed++; console.log(`FAIL: ${name} ${String(detail).slice(0, 400)}`); }
}
const tools = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather in a given city",
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 8 } }, required: ["city"],
                  additionalProperties: false },
  },
}];
function getWeather({ city }) { return JSON.stringify({ city, temperature: 21, unit: "celsius" }); }
try {
  const messages = [{ role: "user", content: "What is the weather like in Paris today?" }];
  const first = await client.chat.completions.create({ model: "m", messages, tools, tool_choice: "required",
                                                       max_tokens: 200, seed: 1 });
  const msg = first.choices[0].message;
  check("tool_calls in the answer, finish_reason tool_calls", Array.isArray(msg.tool_calls) && msg.tool_calls.length >= 1
        && first.choices[0].finish_reason === "tool_calls", JSON.stringify(first));
  messages.push(msg);
  for (const call of msg.tool_calls ?? []) {
    let args = null;
    try { args = JSON.parse(call.function.arguments); } catch { args = null; }
    check("the call names the declared function and its arguments parse and match",
          call.type === "function" && call.function.name === "get_weather" && args && typeof args.city === "string"
          && args.city.length <= 8, JSON.stringify(call));
    messages.push({ role: "tool", tool_call_id: call.id, content: getWeather(args ?? {}) });
  }
  const second = await client.chat.completions.create({ model: "m", messages, tools, max_tokens: 16, temperature: 0 });
  check("the tool's result goes back as a role 'tool' message and the model answers",
        typeof second.choices[0].message.content === "string"
        && ["stop", "length"].includes(second.choices[0].finish_reason), JSON.stringify(second));
  const stream = await client.chat.completions.create({ model: "m", messages: messages.slice(0, 1), tools,
                                                        tool_choice: "required", max_tokens: 200, seed: 2, stream: true });
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      for (const d of c.delta.tool_calls ?? []) {
        calls[d.index] ??= { id: "", name: "", arguments: "" };
        if (d.id) calls[d.index].id = d.id;
        if (d.function?.name) calls[d.index].name += d.function.name;
        if (d.function?.arguments) calls[d.index].arguments += d.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  check("stream: tool_calls deltas join into a call that parses", calls.length >= 1 && calls[0].name === "get_weather"
        && typeof JSON.parse(calls[0].arguments).city === "string" && finish === "tool_calls", JSON.stringify(calls));
} catch (e) {
  check("no exception from the client", false, e.stack ?? e);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
