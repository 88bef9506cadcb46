// hf_ref.js: Hugging Face `tokenizers` (npm) helpers for the exactness tests.
//   node hf_ref.js build-gpt2 VOCAB.json MERGES.txt OUT.json
//       builds a GPT-2 tokenizer.json (byte-level BPE, GPT-2 split)
//   node hf_ref.js train TEXT OUT.json
//       trains a byte-level BPE (tokenizers' default trainer, vocab 30000) on TEXT
//   node hf_ref.js encode TOKENIZER.json IN.jsonl
//       prints one line of ids per {"text": ...} record
'use strict';
const fs = require('fs');
const tk = require('tokenizers');
async function main() {
  const [cmd, a, b, c] = process.argv.slice(2);
  if (cmd === 'build-gpt2') {
    const model = await tk.BPE.fromFile(a, b);
    const t = new tk.Tokenizer(model);
    t.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
    t.setDecoder(tk.byteLevelDecoder ? tk.byteLevelDecoder() : tk.bpeDecoder());
    t.addSpecialTokens(['<|endoftext|>']);
    t.save(c);
  } else if (cmd === 'train') {
    const t = new tk.Tokenizer(tk.BPE.empty());
    t.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
    t.train([a]);
    t.save(b);
    // The node binding cannot set the trainer's initial alphabet, so bytes
    // absent from TEXT get no token; add them (new ids at the end) so the
    // vocabulary is complete byte-level BPE, as cllm requires.
    const j = JSON.parse(fs.readFileSync(b, 'utf8'));
    let next = Math.max(...Object.values(j.model.vocab), ...j.added_tokens.map((x) => x.id)) + 1;
    for (const ch of tk.byteLevelAlphabet()) if (!(ch in j.model.vocab)) j.model.vocab[ch] = next++;
    fs.writeFileSync(b, JSON.stringify(j));
  } else if (cmd === 'encode') {
    const t = tk.Tokenizer.fromFile(a);
    const texts = fs.readFileSync(b, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).text);
    const encs = await t.encodeBatch(texts, { addSpecialTokens: false });
    process.stdout.write(encs.map((e) => e.getIds().join(' ')).join('\n') + '\n');
  } else {
    throw new Error('unknown command ' + cmd);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
