// Write tokenizers-walk.txt: what HF tokenizers itself makes of each code
// point (U+0000..U+10FFFF less surrogates) through its Lowercase and NFC
// normalizers, where that differs from the code point, for
// test/unit/tok/norm.c. Its lowercasing is Rust's char::to_lowercase,
// whose Unicode is the compiler's, so only the library can say.
//
//   npm install tokenizers@0.23.2 && node gen-tokenizers-walk.js > tokenizers-walk.txt
//
// (the official Node.js binding, prebuilt linux-x64-gnu binary)
const t = require('tokenizers');
const version = require('tokenizers/package.json').version;
const norms = { lower: t.lowercase(), nfc: t.nfcNormalizer() };
const hex = (c) => c.toString(16).toUpperCase().padStart(4, '0');
const out = ['# made by gen-tokenizers-walk.js with tokenizers ' + version];
for (const [name, n] of Object.entries(norms)) {
  for (let c = 0; c < 0x110000; c++) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const got = Array.from(n.normalizeString(String.fromCodePoint(c)))
      .map((x) => x.codePointAt(0));
    if (got.length !== 1 || got[0] !== c)
      out.push(name + ' ' + hex(c) + ' ' + got.map(hex).join(' '));
  }
}
process.stdout.write(out.join('\n') + '\n');
