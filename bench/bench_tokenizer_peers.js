// bench_tokenizer_peers.js: encode throughput of the npm peers on one text,
// best of REPEATS runs. tiktoken (Rust in WASM) is single-threaded; tokenizers
// (Rust, native) runs single-threaded (one encode call) and on all cores
// (encodeBatch over lines, parallel inside Rust).
// Usage: node bench_tokenizer_peers.js TEXTFILE HF_TOKENIZER_JSON [REPEATS]
'use strict';
const path = require('path');
const fs = require('fs');
const mods = path.join(__dirname, '..', 'tests', 'js', 'node_modules');
const { get_encoding } = require(path.join(mods, 'tiktoken'));
const tk = require(path.join(mods, 'tokenizers'));
async function main() {
  const [file, hfJson, repArg] = process.argv.slice(2);
  const reps = parseInt(repArg || '3', 10);
  const text = fs.readFileSync(file, 'utf8');
  const mb = Buffer.byteLength(text) / 1e6;
  const out = { bytes: Buffer.byteLength(text) };
  const best = async (fn) => { let b = 0; for (let i = 0; i < reps; i++) { const s = process.hrtime.bigint(); await fn(); const dt = Number(process.hrtime.bigint() - s) / 1e9; b = Math.max(b, mb / dt); } return +b.toFixed(2); };
  for (const enc of ['gpt2', 'cl100k_base']) {
    const e = get_encoding(enc);
    out['tiktoken_' + enc + '_mbps_1'] = await best(() => { e.encode_ordinary(text); });
    e.free();
  }
  const hf = tk.Tokenizer.fromFile(hfJson);
  const lines = text.split(/(?<=\n)/);
  out.tokenizers_gpt2_mbps_1 = await best(() => hf.encode(text, null, { addSpecialTokens: false }));
  out.tokenizers_gpt2_mbps_all = await best(() => hf.encodeBatch(lines, { addSpecialTokens: false }));
  process.stdout.write(JSON.stringify(out) + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
