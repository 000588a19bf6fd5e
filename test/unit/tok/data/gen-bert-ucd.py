#!/usr/bin/env python3
"""Write bert-ucd.txt: the character classes of tokenizers' BertNormalizer,
taken from the upstream sources themselves, for test/unit/tok/bert_ucd.c.

usage: gen-bert-ucd.py BERT_RS CATEGORIES_TABLES_RS NORMALIZATION_TABLES_RS

  BERT_RS: tokenizers/src/normalizers/bert.rs (huggingface/tokenizers at
    d2010d5, the last commit to touch it): is_chinese_char's ranges.
  CATEGORIES_TABLES_RS: src/tables.rs of unicode_categories 0.1.1, the
    crate bert.rs's is_other and is_mark_nonspacing come from (crates.io;
    github swgillespie/unicode-categories at 92bb246; sha256 162393c2...
    5bd8, as the vendored crate's .cargo-checksum.json has it).
  NORMALIZATION_TABLES_RS: src/tables.rs of unicode-normalization-alignments
    0.1.12, whose nfd() NormalizedString uses (github n1t0/unicode-
    normalization at 9ca6960; Unicode 9.0.0).

Nothing here comes from hf or utf8proc. Each line is a class and a code
point range, or "nfd" with a code point and its full canonical
decomposition (Hangul syllables are left to the algorithm).
"""
import hashlib
import re
import sys


def chars(src, name):
    m = re.search(r"pub static %s : &'static \[char\] = &\[(.*?)\];" % name,
                  src, re.S)
    return {int(x, 16) for x in re.findall(r"\\u\{([0-9A-Fa-f]+)\}", m.group(1))}


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] + 1 == c:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def main():
    bert = open(sys.argv[1]).read()
    cat_raw = open(sys.argv[2], 'rb').read()
    cat = cat_raw.decode()
    norm = open(sys.argv[3]).read()
    out = sys.stdout
    out.write('# tokenizers BertNormalizer character classes; made by '
              'gen-bert-ucd.py (see there)\n')
    out.write('# unicode_categories tables.rs sha256 %s\n'
              % hashlib.sha256(cat_raw).hexdigest())
    # is_control: c.is_other() = is_other_control || is_other_format ||
    # is_other_private_use; the private-use ranges are matched in lib.rs
    # before the table (which holds only their ends)
    for name, tab in (('cc', 'OTHER_CONTROL'), ('cf', 'OTHER_FORMAT'),
                      ('mn', 'MARK_NONSPACING')):
        for a, b in ranges(chars(cat, tab)):
            out.write('%s %04X %04X\n' % (name, a, b))
    for a, b in ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)):
        out.write('co %04X %04X\n' % (a, b))
    # is_whitespace: tab, LF, CR, then Rust's char::is_whitespace, the
    # White_Space property (PropList.txt, unchanged since Unicode 6.3)
    for a, b in ((0x9, 0xD), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0),
                 (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
                 (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)):
        out.write('ws %04X %04X\n' % (a, b))
    body = bert[bert.index('fn is_chinese_char'):]
    body = body[:body.index('}')]
    for a, b in re.findall(r"0x([0-9A-Fa-f]+)\.\.=0x([0-9A-Fa-f]+)", body):
        out.write('cjk %04X %04X\n' % (int(a, 16), int(b, 16)))
    assert 'UNICODE_VERSION: (u64, u64, u64) = (9, 0, 0)' in norm
    i = norm.index('CANONICAL_DECOMPOSED_KV:')
    kv = norm[i:norm.index('];', i)]
    dec = {}
    for k, v in re.findall(r"\(0x([0-9a-fA-F]+), &\[([^\]]*)\]\)", kv):
        dec[int(k, 16)] = [int(x, 16)
                           for x in re.findall(r"\\u\{([0-9A-Fa-f]+)\}", v)]
    for k in sorted(dec):
        out.write('nfd %04X %s\n' % (k, ' '.join('%04X' % x for x in dec[k])))


main()
