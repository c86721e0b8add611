// Regenerates reel's text/testdata fixtures with the reference implementations:
//   huggingface/tokenizers (the npm package "tokenizers" 0.23.2, Rust core) for the tokenizer.json
//   files and their golden ids, and google/sentencepiece compiled to WebAssembly (the npm package
//   "@sctg/sentencepiece-js" 1.3.3) for the .model files.
//
//   npm install tokenizers@0.23.2 @sctg/sentencepiece-js@1.3.3
//   node gen.mjs CORPUS.txt TEST_MODEL.model OUTDIR
//
// CORPUS.txt: google/sentencepiece data/botchan.txt (public domain text), the first 60 kB of which
// train the small vocabularies. TEST_MODEL.model: google/sentencepiece python/test/test_model.model.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const tk = require("tokenizers");
const { SentencePieceProcessor } = require("@sctg/sentencepiece-js");

const [corpusPath, spModelPath, out] = process.argv.slice(2);
fs.mkdirSync(out, { recursive: true });
const corpus = fs.readFileSync(corpusPath, "utf8").slice(0, 60000);
// Every byte value that UTF-8 text can hold, so the byte-level vocabularies cover any input.
let alphabet = "";
for (let c = 0x00; c < 0x800; c++) alphabet += String.fromCodePoint(c) + " ";
for (let lead = 0xe0; lead <= 0xef; lead++) alphabet += String.fromCodePoint(lead === 0xe0 ? 0x800 : ((lead & 0x0f) << 12) | 0x100) + " ";
for (const c of [0x10000, 0x40000, 0x80000, 0xc0000, 0x100000, 0x1f600, 0x1f680]) alphabet += String.fromCodePoint(c) + " ";
const trainFile = path.join(out, "..", "train.tmp.txt");
fs.writeFileSync(trainFile, corpus + "\n" + alphabet + "\n");

const cases = JSON.parse(fs.readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), "cases.json"), "utf8"));

function trainJSON(model, setup) {
  const t = new tk.Tokenizer(model);
  setup(t);
  t.train([trainFile]);
  const f = path.join(out, "..", "trained.tmp.json");
  t.save(f);
  const j = JSON.parse(fs.readFileSync(f, "utf8"));
  fs.unlinkSync(f);
  return j;
}

// Trim a trained BPE to its first n merges (and the tokens they and the alphabet need).
function trimBPE(j, nMerges, keep = () => false) {
  const merges = j.model.merges.slice(0, nMerges).map((m) => (Array.isArray(m) ? m : m.split(" ")));
  const need = new Set();
  const alphabetTokens = Object.keys(j.model.vocab).filter((t) => [...t].length === 1 || keep(t));
  for (const t of alphabetTokens) need.add(t);
  for (const [a, b] of merges) { need.add(a); need.add(b); need.add(a + b); }
  const vocab = {};
  let id = 0;
  for (const [t] of Object.entries(j.model.vocab).sort((x, y) => x[1] - y[1])) if (need.has(t)) vocab[t] = id++;
  j.model.vocab = vocab;
  j.model.merges = merges;
  return j;
}

async function golden(name, json, extra = {}) {
  const file = path.join(out, name + ".json");
  fs.writeFileSync(file, JSON.stringify(json));
  const t = tk.Tokenizer.fromFile(file);
  t.save(file); // the reference's own serialization of the file it just read
  const rows = [];
  for (const text of [...cases.common, ...(extra.cases || [])]) {
    const plain = await t.encode(text, null, { addSpecialTokens: false });
    const special = await t.encode(text, null, { addSpecialTokens: true });
    const ids = plain.getIds();
    rows.push({ text, ids, ids_special: special.getIds(), decoded: await t.decode(ids, false), decoded_skip: await t.decode(special.getIds(), true) });
  }
  fs.writeFileSync(path.join(out, name + ".golden.json"), JSON.stringify({ reference: "huggingface/tokenizers via npm tokenizers@0.23.2", cases: rows }, null, 0));
  console.log(name, fs.statSync(file).size, "bytes", rows.length, "cases");
}

const added = (id, content, special = true, o = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special, ...o });

// --- byte-level BPE (GPT-2's pipeline), trained here, then dressed as GPT-2, Llama-3, Qwen2, o200k, DeepSeek-V3 and cl100k.
const bl = trainJSON(tk.BPE.empty(), (t) => {
  t.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
  t.setDecoder(tk.bpeDecoder());
});
trimBPE(bl, 3000);
const blVocab = bl.model.vocab;
const nbl = Object.keys(blVocab).length;
const byteLevel = (re) => re ? { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true } : { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
const bpeModel = (extra = {}) => ({ type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: blVocab, merges: bl.model.merges, ...extra });
const split = (re) => ({ type: "Split", pattern: { Regex: re }, behavior: "Isolated", invert: false });
const blDecoder = { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };

await golden("gpt2", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [added(nbl, "<|endoftext|>")],
  normalizer: null, pre_tokenizer: byteLevel(true),
  post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
  decoder: blDecoder, model: bpeModel(),
});

const llama3Re = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
await golden("llama3", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [added(nbl, "<|begin_of_text|>"), added(nbl + 1, "<|end_of_text|>"), added(nbl + 2, "<|eot_id|>")],
  normalizer: null,
  pre_tokenizer: { type: "Sequence", pretokenizers: [split(llama3Re), byteLevel(false)] },
  post_processor: { type: "Sequence", processors: [{ type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true }, {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [nbl], tokens: ["<|begin_of_text|>"] } },
  }] },
  decoder: blDecoder, model: bpeModel({ ignore_merges: true }),
}, { cases: ["<|begin_of_text|>Hello<|eot_id|>", "a <|eot_id|> b<|end_of_text|>"] });

const qwen2Re = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
await golden("qwen2", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [added(nbl, "<|endoftext|>"), added(nbl + 1, "<|im_start|>"), added(nbl + 2, "<|im_end|>")],
  normalizer: { type: "NFC" },
  pre_tokenizer: { type: "Sequence", pretokenizers: [split(qwen2Re), byteLevel(false)] },
  post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
  decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false }, model: bpeModel(),
}, { cases: ["<|im_start|>user\nHi!<|im_end|>\n", "e\u0301t\u00e9 caf\u0065\u0301"] });

const o200kRe = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
await golden("o200k", {
  version: "1.0", truncation: null, padding: null, added_tokens: [added(nbl, "<|endoftext|>")], normalizer: null,
  pre_tokenizer: { type: "Sequence", pretokenizers: [split(o200kRe), byteLevel(false)] },
  post_processor: null, decoder: blDecoder, model: bpeModel({ ignore_merges: true }),
});

// tiktoken's cl100k_base pattern as Oniguruma reads it: possessive quantifiers.
const cl100kRe = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s";
await golden("cl100k", {
  version: "1.0", truncation: null, padding: null, added_tokens: [added(nbl, "<|endoftext|>")], normalizer: null,
  pre_tokenizer: { type: "Sequence", pretokenizers: [split(cl100kRe), byteLevel(false)] },
  post_processor: null, decoder: blDecoder, model: bpeModel(),
});

await golden("deepseek3", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [added(nbl, "<｜begin▁of▁sentence｜>"), added(nbl + 1, "<｜end▁of▁sentence｜>")], normalizer: null,
  pre_tokenizer: { type: "Sequence", pretokenizers: [
    split("\\p{N}{1,3}"), split("[一-龥\u3040-ゟ゠-ヿ]+"),
    split("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
    byteLevel(false)] },
  post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<｜begin▁of▁sentence｜>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [],
    special_tokens: { "<｜begin▁of▁sentence｜>": { id: "<｜begin▁of▁sentence｜>", ids: [nbl], tokens: ["<｜begin▁of▁sentence｜>"] } } },
  decoder: blDecoder, model: bpeModel(),
});

// --- SentencePiece-style BPE with byte fallback (Llama-2, Gemma pipelines).
const sp = trainJSON(tk.BPE.empty(), (t) => {
  t.setPreTokenizer(tk.metaspacePreTokenizer("▁", "always", true));
});
trimBPE(sp, 2500);
{
  const v = {}; let id = 0;
  for (const s of ["<unk>", "<s>", "</s>"]) v[s] = id++;
  for (let b = 0; b < 256; b++) v["<0x" + b.toString(16).toUpperCase().padStart(2, "0") + ">"] = id++;
  for (const [t] of Object.entries(sp.model.vocab).sort((x, y) => x[1] - y[1])) if (!(t in v)) v[t] = id++;
  sp.model.vocab = v;
}
const spModel = (extra = {}) => ({ type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab: sp.model.vocab, merges: sp.model.merges, ...extra });
const spAdded = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")];
const bosTemplate = { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [],
  special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } } };
await golden("llama2", {
  version: "1.0", truncation: null, padding: null, added_tokens: spAdded, normalizer: null,
  pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
  post_processor: bosTemplate,
  decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
  model: spModel(),
}, { cases: ["<s>Hello</s> there", "Hi <s> x"] });

await golden("gemma", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [...spAdded, added(Object.keys(sp.model.vocab).length, "<start_of_turn>"), added(Object.keys(sp.model.vocab).length + 1, "<end_of_turn>")],
  normalizer: { type: "Replace", pattern: { String: " " }, content: "▁" }, pre_tokenizer: null,
  post_processor: bosTemplate,
  decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }] },
  model: spModel({ fuse_unk: true }),
}, { cases: ["<start_of_turn>user\nHi<end_of_turn>\n"] });

// --- BERT WordPiece.
const wp = trainJSON(tk.WordPiece.empty(), (t) => {
  t.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: true }));
  t.setPreTokenizer(tk.bertPreTokenizer());
});
{
  const v = {}; let id = 0;
  for (const s of ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) v[s] = id++;
  const entries = Object.entries(wp.model.vocab).sort((x, y) => x[1] - y[1]).slice(0, 3000);
  for (const [t] of entries) if (!(t in v)) v[t] = id++;
  await golden("bert", {
    version: "1.0", truncation: null, padding: null,
    added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((s, i) => added(i, s)),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: { type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }], pair: [],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] } } },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: v },
  }, { cases: ["[CLS] hello [SEP] [MASK]!", "Ünïcödé ÀÉÎ straße İstanbul"] });
}

// --- Unigram from a real SentencePiece model (T5 / ALBERT pipelines of transformers' converters).
function readProto(buf) {
  let pos = 0;
  const varint = () => { let x = 0n, s = 0n; for (;;) { const b = buf[pos++]; x |= BigInt(b & 0x7f) << s; s += 7n; if (!(b & 0x80)) return x; } };
  const fields = [];
  while (pos < buf.length) {
    const tag = Number(varint()); const num = tag >> 3, wt = tag & 7;
    if (wt === 0) fields.push([num, varint()]);
    else if (wt === 5) { fields.push([num, buf.readUInt32LE(pos)]); pos += 4; }
    else if (wt === 1) { pos += 8; }
    else if (wt === 2) { const n = Number(varint()); fields.push([num, buf.subarray(pos, pos + n)]); pos += n; }
    else throw new Error("wire type " + wt);
  }
  return fields;
}
const spBuf = fs.readFileSync(spModelPath);
const pieces = [];
let charsmap = Buffer.alloc(0);
for (const [num, v] of readProto(spBuf)) {
  if (num === 1) {
    let p = "", score = 0, type = 1;
    for (const [n, x] of readProto(v)) { if (n === 1) p = x.toString("utf8"); if (n === 2) score = new Float32Array(new Uint32Array([x]).buffer)[0]; if (n === 3) type = Number(x); }
    pieces.push([p, score, type]);
  }
  if (num === 3) for (const [n, x] of readProto(v)) if (n === 2) charsmap = Buffer.from(x);
}
const unkId = pieces.findIndex((p) => p[2] === 2);
const uniVocab = pieces.map(([p, s, t]) => [p, t === 1 ? s : 0]);
const uniAdded = pieces.map(([p, , t], i) => [p, t, i]).filter(([, t]) => t === 2 || t === 3).map(([p, , i]) => added(i, p));
await golden("t5", {
  version: "1.0", truncation: null, padding: null, added_tokens: uniAdded,
  normalizer: { type: "Sequence", normalizers: [{ type: "Precompiled", precompiled_charsmap: charsmap.toString("base64") }, { type: "Strip", strip_left: false, strip_right: true }, { type: "Replace", pattern: { Regex: " {2,}" }, content: "▁" }] },
  pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
  post_processor: { type: "TemplateProcessing", single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }], pair: [],
    special_tokens: { "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] } } },
  decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
  model: { type: "Unigram", unk_id: unkId, vocab: uniVocab, byte_fallback: false },
}, { cases: ["ＡＢＣ１２３ ｶﾀｶﾅ ﬁ ①", "I was born in 92000, and this is falsé."] });

await golden("albert", {
  version: "1.0", truncation: null, padding: null, added_tokens: uniAdded,
  normalizer: { type: "Sequence", normalizers: [{ type: "Replace", pattern: { String: "``" }, content: "\"" }, { type: "Replace", pattern: { String: "''" }, content: "\"" },
    { type: "NFKD" }, { type: "StripAccents" }, { type: "Lowercase" }, { type: "Precompiled", precompiled_charsmap: charsmap.toString("base64") }, { type: "Replace", pattern: { Regex: " {2,}" }, content: " " }] },
  pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true }] },
  post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }], pair: [],
    special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] }, "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] } } },
  decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
  model: { type: "Unigram", unk_id: unkId, vocab: uniVocab, byte_fallback: true },
}, { cases: ["``Quoted'' ÀÉÎ 123 digits2nd"] });

// --- SentencePiece .model files, ids from google/sentencepiece itself.
function writeVarint(x) { const b = []; x = BigInt(x); if (x < 0n) x += 1n << 64n; do { let c = Number(x & 0x7fn); x >>= 7n; if (x) c |= 0x80; b.push(c); } while (x); return Buffer.from(b); }
const fieldBytes = (num, payload) => Buffer.concat([writeVarint((num << 3) | 2), writeVarint(payload.length), payload]);
const fieldVarint = (num, v) => Buffer.concat([writeVarint(num << 3), writeVarint(v)]);
const fieldFloat = (num, f) => { const b = Buffer.alloc(4); b.writeFloatLE(f); return Buffer.concat([writeVarint((num << 3) | 5), b]); };
// A BPE SentencePiece model from the trained byte-fallback vocabulary: piece scores are minus the
// merge rank, as spm_train writes them.
function bpeModelProto({ dummy, removeWS }) {
  const parts = [];
  const v = Object.entries(sp.model.vocab).sort((a, b) => a[1] - b[1]);
  const rank = new Map(sp.model.merges.map(([a, b], i) => [a + b, i]));
  for (const [p, id] of v) {
    const type = id === 0 ? 2 : id < 3 ? 3 : id < 259 ? 6 : 1;
    const score = type === 1 ? -(rank.has(p) ? rank.get(p) + 1 : 0) : 0;
    parts.push(fieldBytes(1, Buffer.concat([fieldBytes(1, Buffer.from(p, "utf8")), fieldFloat(2, score), fieldVarint(3, type)])));
  }
  parts.push(fieldBytes(2, Buffer.concat([fieldVarint(3, 2), fieldVarint(35, 1), fieldVarint(40, 0), fieldVarint(41, 1), fieldVarint(42, 2), fieldVarint(43, -1)])));
  parts.push(fieldBytes(3, Buffer.concat([fieldBytes(1, Buffer.from("identity")), fieldVarint(3, dummy ? 1 : 0), fieldVarint(4, removeWS ? 1 : 0), fieldVarint(5, 1)])));
  return Buffer.concat(parts);
}
async function spGolden(name, buf, extra = []) {
  const file = path.join(out, name + ".model");
  fs.writeFileSync(file, buf);
  const proc = new SentencePieceProcessor();
  await proc.loadFromB64StringModel(buf.toString("base64"));
  const rows = [];
  for (const text of [...cases.common, ...extra]) {
    const ids = proc.encodeIds(text);
    rows.push({ text, ids, decoded: proc.decodeIds(ids) });
  }
  fs.writeFileSync(path.join(out, name + ".golden.json"), JSON.stringify({ reference: "google/sentencepiece via npm @sctg/sentencepiece-js@1.3.3", cases: rows }));
  console.log(name, buf.length, "bytes", rows.length, "cases");
}
await spGolden("sp_unigram", spBuf, ["ＡＢＣ１２３ ｶﾀｶﾅ ﬁ ①", "  leading and   inner   spaces  "]);
await spGolden("sp_bpe_llama", bpeModelProto({ dummy: true, removeWS: false }));
await spGolden("sp_bpe_gemma", bpeModelProto({ dummy: false, removeWS: false }));
fs.unlinkSync(trainFile);
