// compare.mjs: loads each OUT_DIR/<name>.gguf written by make_models with
// llama.cpp (node-llama-cpp, CPU) and compares its next-token logits at
// every prompt position and its greedy continuation with cllm's
// (OUT_DIR/<name>.json). Prints one line per file and "N passed, N failed".
//
// llama.cpp runs on the CPU with an f32 KV cache and no flash attention.
// Tolerances (per file, over all prompt positions):
//  f32:  max |logit difference| <= 1e-3 * max|logit| + 1e-4 (ggml computes
//        GELU through an fp16 lookup table; the llama arch has no GELU and
//        agrees to ~1e-5), mean KL <= 1e-4, same top-1 everywhere, same
//        8-token greedy continuation;
//  f16:  3e-3 * max|logit| + 1e-4 (ggml rounds activations to f16 for f16
//        dot products), otherwise as f32;
//  q8_0 / q4_0: llama.cpp quantizes the activations to 8 bits before its
//        quantized dot products while cllm's reference uses the dequantized
//        weights with f32 activations, so logits are compared as
//        distributions: mean KL <= 1e-2 (q8_0) / 2e-2 (q4_0) and the first
//        4 greedy tokens equal; top-1 agreement is reported.
import fs from "node:fs";
import path from "node:path";
import { getLlama } from "node-llama-cpp";

const dir = process.argv[2];
const llama = await getLlama({ gpu: false, logLevel: "error" });
let passed = 0, failed = 0;
const names = fs.readdirSync(dir).filter((f) => f.endsWith(".gguf")).map((f) => f.slice(0, -5)).sort();
for (const name of names) {
  const want = JSON.parse(fs.readFileSync(path.join(dir, name + ".json"), "utf8"));
  const quant = /q8_0|q4_0/.test(name);
  let msg = "";
  try {
    const model = await llama.loadModel({ modelPath: path.join(dir, name + ".gguf") });
    const ctx = await model.createContext({
      contextSize: 16, batchSize: 16, sequences: 1, flashAttention: false,
      // an f32 KV cache, so the comparison measures the weights, not llama.cpp's default f16 cache
      experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
    });
    const seq = ctx.getSequence();
    const V = want.logits[0].length;
    const evalLogits = async (tokens) => {
      await seq.clearHistory();
      const out = await seq.controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }]));
      const rows = out.map((o) => { const r = new Array(V).fill(NaN); for (const [tok, v] of o.next.logits) r[tok] = v; return r; });
      return rows;
    };
    const got = await evalLogits(want.tokens);
    let maxDiff = 0, maxAbs = 0;
    for (let t = 0; t < want.tokens.length; t++)
      for (let v = 0; v < V; v++) {
        maxDiff = Math.max(maxDiff, Math.abs(got[t][v] - want.logits[t][v]));
        maxAbs = Math.max(maxAbs, Math.abs(want.logits[t][v]));
      }
    if (Number.isNaN(maxDiff)) maxDiff = Infinity;
    // mean KL(cllm || llama.cpp) of the next-token distributions, and top-1 agreement
    const logSoftmax = (r) => { const m = Math.max(...r); const z = Math.log(r.reduce((a, x) => a + Math.exp(x - m), 0)) + m; return r.map((x) => x - z); };
    let kl = 0, top1 = 0;
    for (let t = 0; t < want.tokens.length; t++) {
      const lp = logSoftmax(want.logits[t]), lq = logSoftmax(got[t]);
      for (let v = 0; v < V; v++) kl += Math.exp(lp[v]) * (lp[v] - lq[v]);
      const am = (r) => r.reduce((b, x, i) => (x > r[b] ? i : b), 0);
      if (am(want.logits[t]) === am(got[t])) top1++;
    }
    kl /= want.tokens.length;
    if (Number.isNaN(kl)) kl = Infinity;
    const f16 = /f16/.test(name);
    const tol = quant ? Infinity : (f16 ? 3e-3 : 1e-3) * maxAbs + 1e-4;
    const klTol = quant ? (/q4_0/.test(name) ? 2e-2 : 1e-2) : 1e-4;
    const toks = [...want.tokens], greedy = [];
    for (let g = 0; g < want.greedy.length; g++) {
      const rows = await evalLogits(toks);
      const last = rows[rows.length - 1];
      let b = 0;
      for (let v = 1; v < V; v++) if (last[v] > last[b]) b = v;
      greedy.push(b);
      toks.push(b);
    }
    const need = quant ? 4 : want.greedy.length;
    const greedyOk = greedy.slice(0, need).every((t, i) => t === want.greedy[i]);
    const ok = maxDiff <= tol && kl <= klTol && (quant || top1 === want.tokens.length) && greedyOk;
    msg = `max|dlogit| ${maxDiff.toExponential(2)} (tol ${tol.toExponential(2)}, max|logit| ${maxAbs.toFixed(2)}), ` +
      `KL ${kl.toExponential(2)} (tol ${klTol.toExponential(0)}), top-1 ${top1}/${want.tokens.length}, ` +
      `greedy llama.cpp [${greedy}] cllm [${want.greedy}]`;
    ok ? passed++ : failed++;
    console.log(`${ok ? "ok    " : "FAIL  "} ${name}: ${msg}`);
    await ctx.dispose();
    await model.dispose();
  } catch (e) {
    failed++;
    console.log(`FAIL   ${name}: ${e.message}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
