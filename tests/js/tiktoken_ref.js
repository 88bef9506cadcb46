// tiktoken_ref.js: encodes every {"text": ...} line of a JSONL file with the
// npm `tiktoken` package (special tokens treated as ordinary text, like
// encode_ordinary) and prints one line of space-separated ids per input line.
// Usage: node tiktoken_ref.js ENCODING IN.jsonl > OUT.txt
'use strict';
const fs = require('fs');
const { get_encoding } = require('tiktoken');
const enc = get_encoding(process.argv[2]);
const out = [];
for (const line of fs.readFileSync(process.argv[3], 'utf8').split('\n')) {
  if (!line) continue;
  out.push(Array.from(enc.encode_ordinary(JSON.parse(line).text)).join(' '));
}
enc.free();
process.stdout.write(out.join('\n') + '\n');
