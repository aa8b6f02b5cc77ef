// Checks the ONNX files of a model folder written by export_onnx.py against its PyTorch reference tensors
// (DIR/check/, written by `export_onnx.py --check`), in onnxruntime-web's WASM backend under Node, 1 thread:
//
//   node bench/ort/check_onnx.mjs build/ort/tiny.en-seed1
//
// Each precision runs the whole chain in ONNX (encoder -> cross K/V -> 4 decoder steps of 2 rows from an empty
// cache, the rows sharing one cross K/V), and every stage is compared with PyTorch:
//   fp32: max |diff| <= 1e-4 x max |ref| (DESIGN.md 10's parity bound; the export should be near 1e-6);
//   int8: cosine similarity >= 0.999 for every stage, and where a logits row's top-1 token differs from the
//         reference's, the reference must rank the two within 2 x that row's max |diff| (a near tie that int8
//         error may flip, not a wrong token); relative errors are printed.
// Exit code 0 = all checks passed.
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';

import { createSessions, decoderFeeds, emptyPast, nextPast, releaseSessions } from './ort_bench.mjs';

ort.env.wasm.numThreads = 1;

function readTensor(folder, index, name) {
  const info = index[name];
  const raw = fs.readFileSync(path.join(folder, info.file));
  const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  const data = info.dtype === 'int64' ? new BigInt64Array(buf) : new Float32Array(buf);
  return { data, dims: info.shape };
}

function compare(got, want) {
  let maxDiff = 0, maxRef = 0, dot = 0, ng = 0, nw = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    maxDiff = Math.max(maxDiff, Number.isFinite(g) ? Math.abs(g - w) : Infinity);
    maxRef = Math.max(maxRef, Math.abs(w));
    dot += g * w; ng += g * g; nw += w * w;
  }
  return { maxDiff, rel: maxDiff / maxRef, cos: dot / Math.sqrt(ng * nw) };
}

function argmax(a, begin, end) {
  let best = begin;
  for (let i = begin; i < end; i++) if (a[i] > a[best]) best = i;
  return best - begin;
}

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node bench/ort/check_onnx.mjs MODEL_DIR');
  process.exit(2);
}
const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const checkDir = path.join(dir, 'check');
const index = JSON.parse(fs.readFileSync(path.join(checkDir, 'index.json'), 'utf8'));
const ref = Object.fromEntries(Object.keys(index).map((k) => [k, readTensor(checkDir, index, k)]));
const vocab = manifest.dims.n_vocab;
const [rows, nSteps] = ref.tokens.dims;
let failures = 0;

const report = (precision, what, r, ok, extra = '') => {
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${manifest.shape} ${precision.padEnd(4)} ${what.padEnd(26)} ` +
              `max|diff| ${r.maxDiff.toExponential(2)}  relative ${r.rel.toExponential(2)}  cosine ${r.cos.toFixed(6)}${extra}`);
};

for (const precision of ['fp32', 'int8']) {
  const loadBytes = async (name) => new Uint8Array(fs.readFileSync(path.join(dir, name)));
  const { sessions } = await createSessions(ort, manifest, precision, loadBytes);
  const fp32 = precision === 'fp32';
  const near = (r) => r.rel <= 1e-4;

  const mel = new ort.Tensor('float32', ref.mel.data, ref.mel.dims);
  const audio = (await sessions.encoder.run({ mel })).audio_features;
  const enc = compare(audio.data, ref.audio_features.data);
  report(precision, 'encoder output', enc, fp32 ? near(enc) : enc.cos >= 0.999);

  const cross = await sessions.cross_kv.run({ audio_features: audio });
  for (const name of ['cross_key_0', 'cross_value_0']) {
    const r = compare(cross[name].data, ref[name].data);
    report(precision, `${name} (after encoder)`, r, fp32 ? near(r) : r.cos >= 0.999);
  }

  let past = emptyPast(ort, manifest, rows);
  let top1Equal = 0;
  let wrongTop1 = 0;
  let worst = { maxDiff: 0, rel: 0, cos: 1 };
  for (let step = 0; step < nSteps; step++) {
    const tokens = Array.from({ length: rows }, (_, r) => Number(ref.tokens.data[r * nSteps + step]));
    const out = await sessions.decoder.run(decoderFeeds(ort, manifest, tokens, past, cross));
    const want = new Float32Array(rows * vocab);
    for (let r = 0; r < rows; r++) {
      want.set(ref.logits.data.subarray((r * nSteps + step) * vocab, (r * nSteps + step + 1) * vocab), r * vocab);
      const got = out.logits.data.subarray(r * vocab, (r + 1) * vocab);
      const wantRow = want.subarray(r * vocab, (r + 1) * vocab);
      const gotTop = argmax(got, 0, vocab);
      const wantTop = argmax(wantRow, 0, vocab);
      if (gotTop === wantTop) top1Equal++;
      else if (wantRow[wantTop] - wantRow[gotTop] > 2 * compare(got, wantRow).maxDiff) wrongTop1++;
    }
    const r = compare(out.logits.data, want);
    if (r.rel > worst.rel) worst = r;
    worst.cos = Math.min(worst.cos, r.cos);
    const presentLen = out.present_key_0.dims[2];
    if (presentLen !== step + 1) {
      failures++;
      console.log(`FAIL ${precision}: present length ${presentLen} after step ${step}`);
    }
    past = nextPast(manifest, out);
  }
  const pairs = rows * nSteps;
  report(precision, `logits (${rows} rows x ${nSteps} steps)`, worst,
         fp32 ? near(worst) && top1Equal === pairs : worst.cos >= 0.999 && wrongTop1 === 0,
         `  top-1 equal ${top1Equal}/${pairs}` + (top1Equal < pairs ? ` (${wrongTop1} beyond a near tie)` : ''));
  await releaseSessions(sessions);
}
console.log(failures ? `check_onnx: ${failures} check(s) FAILED` : 'check_onnx: all checks passed');
process.exit(failures ? 1 : 0);
