// ranks.js: writes the vocabulary that the npm `tiktoken` package ships for
// ENCODING as a tiktoken rank file ("<base64 token> <rank>" per line), the
// format OpenAI publishes. The package stores it compressed as lines of
// "<prefix> <first rank> <base64> <base64> ...".
// Usage: node ranks.js ENCODING OUT.tiktoken
'use strict';
const fs = require('fs');
const path = require('path');
const file = path.join(__dirname, 'node_modules', 'tiktoken', 'encoders', process.argv[2] + '.json');
const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
const out = [];
for (const line of spec.bpe_ranks.split('\n')) {
  if (!line) continue;
  const [, offset, ...tokens] = line.split(' ');
  const base = parseInt(offset, 10);
  tokens.forEach((tok, i) => out.push(tok + ' ' + (base + i)));
}
fs.writeFileSync(process.argv[3], out.join('\n') + '\n');
