// Transcribes a WAV with the WebAssembly engine under Node and checks that the result equals the native CLI's
// (`earshot transcribe --json`) token for token: both builds run the same sources, so they must agree.
// Usage: node wasm_vs_native.mjs BUILD_WASM_DIR MODEL.earshot AUDIO.wav NATIVE_RESULT.json [BEAM] [LOGPROB_TOL]
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

// LOGPROB_TOL (default 1e-4) bounds |log-prob difference| per token.
const [wasmDir, modelPath, wavPath, nativePath, beamArg, tolArg] = process.argv.slice(2);
const logprobTol = Number(tolArg ?? 1e-4);
if (!nativePath) {
  console.error('usage: node wasm_vs_native.mjs BUILD_WASM_DIR MODEL.earshot AUDIO.wav NATIVE_RESULT.json [BEAM] [LOGPROB_TOL]');
  process.exit(2);
}
// The ES6 Emscripten glue looks for CommonJS globals when it runs under Node.
globalThis.require = createRequire(import.meta.url);
globalThis.__dirname = path.resolve(wasmDir);
const { default: createEarshotModule } = await import(path.resolve(wasmDir, 'earshot.mjs'));
const mod = await createEarshotModule({ wasmBinary: readFileSync(path.resolve(wasmDir, 'earshot.wasm')) });

const engine = new mod.Engine();
const modelBytes = readFileSync(modelPath);
engine.modelBuffer(modelBytes.length).set(modelBytes);
const loaded = engine.loadModel();
assert.equal(loaded.error, undefined, `loading the model: ${loaded.error}`);

const wavBytes = readFileSync(wavPath);
engine.wavBuffer(wavBytes.length).set(wavBytes);
const audio = engine.decodeWav();
assert.equal(audio.error, undefined, `decoding the WAV: ${audio.error}`);

const beamSize = Number(beamArg ?? 5);
const result = engine.transcribe({ beamSize });
assert.equal(result.error, undefined, `transcribing: ${result.error}`);
const native = JSON.parse(readFileSync(nativePath, 'utf8'));

assert.deepEqual(result.tokens.map((t) => t.id), native.tokens.map((t) => t.id), 'token ids differ from the native build');
assert.equal(result.text, native.text);
for (let i = 0; i < result.tokens.length; i++) {
  assert.ok(Math.abs(result.tokens[i].logprob - native.tokens[i].logprob) <= logprobTol,
    `token ${i} log-prob ${result.tokens[i].logprob} vs native ${native.tokens[i].logprob}`);
}

// Bad input comes back as an error object, never an abort.
const junk = new Uint8Array(1000).fill(7);
const badEngine = new mod.Engine();
badEngine.modelBuffer(junk.length).set(junk);
const bad = badEngine.loadModel();
assert.ok(typeof bad.error === 'string' && bad.error.length > 0, 'a corrupt model must give an error');
badEngine.wavBuffer(junk.length).set(junk);
assert.ok(typeof badEngine.decodeWav().error === 'string', 'a corrupt WAV must give an error');
engine.delete();
badEngine.delete();
console.log(`wasm == native: ${result.tokens.length} tokens, text ${JSON.stringify(result.text.slice(0, 60))}`);
