// corpus.js: writes a varied test corpus as JSONL ({"text": ...} per line)
// for the tokenizer exactness tests. Deterministic (seeded), generated at
// test time so nothing large is committed.
// Usage: node corpus.js OUT.jsonl [N_SAMPLES] [SEED]
'use strict';
const fs = require('fs');
const out = process.argv[2];
const n = parseInt(process.argv[3] || '3000', 10);
let seed = parseInt(process.argv[4] || '12345', 10) >>> 0;
function rnd() { // xorshift32
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed / 4294967296;
}
const ri = (k) => Math.floor(rnd() * k);
const pick = (a) => a[ri(a.length)];
const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'Hello', 'world',
  'tokenizer', 'encoding', 'naïve', 'café', 'Straße', 'résumé', 'GPT', 'OpenAI', 'BPE', 'merge',
  'don\'t', 'it\'s', 'we\'ll', 'they\'re', 'I\'ve', 'I\'m', 'he\'d', 'IT\'S', 'WE\'LL', 'You\'RE',
  'internationalization', 'antidisestablishmentarianism', 'a', 'I', 'x', 'ZZZ', 'camelCase',
  'snake_case', 'HTTPServer', 'iPhone', 'McDonald\'s'];
const korean = ['안녕하세요', '세계', '토크나이저', '한국어', '문장을', '나눕니다', '대한민국', '서울',
  '프로그래밍', '언어', '모델', '학습', '데이터', '것은', '입니다', '했습니다'];
const other = ['こんにちは', '世界', '東京', '日本語のテキスト', 'Привет', 'мир', 'Ελληνικά', 'العربية',
  'עברית', 'हिन्दी', 'ไทย', '中文分词', 'Tiếng Việt', 'Ünïcödé', 'ﬁ', 'Ⅻ', '½', '²³', '٣٤٥', '०१२'];
const emoji = ['😀', '👍🏽', '👨‍👩‍👧‍👦', '🇰🇷', '❤️', '🚀', '✨', '🤖', '🏳️‍🌈', '©', '™', '∑', '→', '…'];
const code = [
  'int main(void) {\n    return 0;\n}\n',
  'def f(x):\n\treturn x ** 2  # square\n',
  'for (let i = 0; i < n; i++) { sum += a[i]; }',
  '#include <stdio.h>\n\nstatic const char *s = "hi\\n";\n',
  '  if x != None:\n      print(f"{x!r}")\n',
  '<div class="a">&nbsp;</div>\r\n',
  'SELECT * FROM t WHERE id = 42;\n',
  '{"key": [1, 2.5e-3, true, null]}',
  '    \n\n\n    // comment\n',
  'x+=1;y-=2;z*=3;w/=4;',
  'https://example.com/path?q=1&r=2#frag',
];
const ws = [' ', '  ', '   ', '\t', '\n', '\r\n', '\n\n', ' \n', '\u00a0', '\u3000', '\u2009', '\v', '\f'];
function randomCodePoint() {
  // Ranges whose letter/number properties are the same in Unicode 14 (PCRE2
  // 10.42) and Unicode 15 (Rust regex in tiktoken).
  const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff],
    [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f],
    [0x2100, 0x218f], [0x2190, 0x23ff], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3],
    [0xff00, 0xffef], [0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x0, 0x1f]];
  const r = pick(ranges);
  let cp = r[0] + ri(r[1] - r[0] + 1);
  if (cp === 0) cp = 0x41; // NUL is tested separately (C tests), not through JSON
  return String.fromCodePoint(cp);
}
function digits(k) { let s = ''; for (let i = 0; i < k; i++) s += String(ri(10)); return s; }
function sentence() {
  const parts = [];
  const len = 1 + ri(20);
  for (let i = 0; i < len; i++) {
    const r = rnd();
    if (r < 0.55) parts.push(pick(words));
    else if (r < 0.68) parts.push(pick(korean));
    else if (r < 0.76) parts.push(pick(other));
    else if (r < 0.82) parts.push(pick(emoji));
    else if (r < 0.9) parts.push(digits(1 + ri(12)));
    else parts.push(pick(['.', ',', '!', '?', ';', ':', '--', '...', '"', '\'', '(', ')', '\'s', '\'ll', '\'S']));
    parts.push(rnd() < 0.8 ? ' ' : pick(ws));
  }
  return parts.join('');
}
function sample(i) {
  const kind = i % 10;
  if (kind <= 2) return sentence();
  if (kind === 3) return pick(code) + sentence();
  if (kind === 4) { let s = ''; const k = 1 + ri(200); for (let j = 0; j < k; j++) s += randomCodePoint(); return s; }
  if (kind === 5) return pick(ws).repeat(1 + ri(300)) + pick(words) + ' '.repeat(ri(100)) + '\n'.repeat(ri(5));
  if (kind === 6) return digits(1 + ri(400)) + ' ' + digits(ri(10)) + '.' + digits(ri(7));
  if (kind === 7) { let s = ''; for (let j = 0; j < 3 + ri(8); j++) s += pick(korean) + pick([' ', '', '. ', '\n']); return s; }
  if (kind === 8) return sentence() + sentence().toUpperCase() + sentence();
  return pick(['<|endoftext|>', '<|im_start|>', '<|fim_prefix|>']) + sentence() + pick(emoji).repeat(1 + ri(5));
}
const lines = [];
for (let i = 0; i < n; i++) lines.push(JSON.stringify({ text: sample(i) }));
// Also a few long documents (several KB) to exercise long pieces and caches.
for (let i = 0; i < 20; i++) { let s = ''; for (let j = 0; j < 100; j++) s += sentence(); lines.push(JSON.stringify({ text: s })); }
fs.writeFileSync(out, lines.join('\n') + '\n');
