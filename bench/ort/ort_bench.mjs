// onnxruntime-web (WASM backend) timings of the Whisper-shaped ONNX files written by bench/ort/export_onnx.py.
//
//   node bench/ort/ort_bench.mjs --model-dir build/ort/tiny.en-seed1 [--runtime node|chromium] [--threads 1]
//        [--precisions fp32,int8] [--encoder-runs 3] [--steps 64] [--beams 1,5] [--quick]
//
// One invocation = one runtime and one thread count (onnxruntime-web fixes its thread pool when its WASM module
// starts). --runtime node runs in this process; --runtime chromium serves the repository (bench/lib/server.mjs,
// cross-origin isolated) and runs this same file as a module worker of bench/ort/ort_page.html in headless
// Chromium (bench/lib/chromium.mjs). Output: one JSON line per measure on stdout, progress on stderr:
//   {"engine":"onnxruntime-web","ort":"1.30.0","runtime":"node","version":"v20.20.2","shape":"tiny.en","seed":1,
//    "threads":1,"precision":"int8","measure":"encoder_ms","beam":null,"value":1150.2,"samples":[...],
//    "cpu_ms":1149.8}
// ("version" is Node's or Chromium's; "detail" carries extra facts for some measures.)
// Measures: init_ms (onnxruntime-web's start-up: the first session, of a one-node graph, compiles the WASM module
// and starts the thread pool; once per run), load_ms (then creating the encoder, cross K/V and decoder sessions
// from bytes already in memory; file reading/fetching is in detail.read_ms), load_total_ms (init_ms + reading the
// files + load_ms: what a page pays from nothing to a ready model, the counterpart of earshot's load_ms),
// encoder_ms (mel [1, 80, 3000] -> [1, 1500, d]; median of --encoder-runs after one warm-up run), cross_kv_ms
// (every layer's cross-attention K/V from the encoder output; median likewise), decoder_step_ms with beam B
// (a batch of B rows, one token each, through a KV cache growing from 0 to --steps - 1; the mean over all steps
// of a second pass, after a first pass as warm-up). The beams share one cross K/V (cross batch 1, broadcast), and
// the tokens are forced (no search, no cache reordering), so this is the engine's share of a beam-search step.
// Each step feeds the cross K/V from JS again, as onnxruntime-web's API requires (transformers.js does the same).
// In Node each line also carries cpu_ms (process CPU time, all threads, for the same span): on this shared machine
// wall time depends on the load, and for 1 thread the CPU time is the steadier figure.

const IS_WORKER = typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope;
const IS_NODE = typeof process !== 'undefined' && !!process.versions?.node && !IS_WORKER;

export const DEFAULTS = { encoderRuns: 3, steps: 64, beams: [1, 5], precisions: ['fp32', 'int8'] };
export const QUICK = { encoderRuns: 1, steps: 16, beams: [1, 5], precisions: ['fp32', 'int8'] };

const now = () => performance.now();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x) => Math.round(x * 100) / 100;

// --- model helpers (also used by check_onnx.mjs) ------------------------------------------------------------------
export function fileFor(manifest, model, precision) {
  const key = precision === 'int8' ? `${model}_int8` : model;
  const name = manifest.files[key];
  if (!name) throw new Error(`manifest has no ${key} file`);
  return name;
}

export async function createSessions(ort, manifest, precision, loadBytes) {
  const bytes = {};
  let fetchMs = 0;
  for (const model of ['encoder', 'cross_kv', 'decoder']) {
    const t = now();
    bytes[model] = await loadBytes(fileFor(manifest, model, precision));
    fetchMs += now() - t;
  }
  const sessions = {};
  const createMs = {};
  for (const model of ['encoder', 'cross_kv', 'decoder']) {
    const t = now();
    sessions[model] = await ort.InferenceSession.create(bytes[model], {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
    createMs[model] = now() - t;
    delete bytes[model];
  }
  return { sessions, createMs, fetchMs };
}

export async function releaseSessions(sessions) {
  for (const s of Object.values(sessions)) await s.release();
}

function nLayers(manifest) {
  return manifest.dims.n_text_layer;
}

/** Empty self-attention cache for `batch` rows: past length 0. */
export function emptyPast(ort, manifest, batch) {
  const { n_text_head: h } = manifest.dims;
  const past = {};
  for (let i = 0; i < nLayers(manifest); i++) {
    for (const kind of ['key', 'value']) {
      past[`past_${kind}_${i}`] = new ort.Tensor('float32', new Float32Array(0), [batch, h, 0, manifest.head_dim]);
    }
  }
  return past;
}

/** The decoder's inputs for one step: tokens (int array, one per row), the cache, and cross_kv's outputs. */
export function decoderFeeds(ort, manifest, tokens, past, cross) {
  const feeds = { tokens: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [tokens.length, 1]), ...past };
  for (let i = 0; i < nLayers(manifest); i++) {
    feeds[`cross_key_${i}`] = cross[`cross_key_${i}`];
    feeds[`cross_value_${i}`] = cross[`cross_value_${i}`];
  }
  return feeds;
}

/** The next step's cache from a step's outputs. */
export function nextPast(manifest, outputs) {
  const past = {};
  for (let i = 0; i < nLayers(manifest); i++) {
    past[`past_key_${i}`] = outputs[`present_key_${i}`];
    past[`past_value_${i}`] = outputs[`present_value_${i}`];
  }
  return past;
}

function disposeAll(tensors, keep = new Set()) {
  for (const t of Object.values(tensors)) if (!keep.has(t)) t.dispose?.();
}

/** A fixed, spread-out token sequence (forced decoding: what the tokens are does not change the work). */
export function forcedToken(manifest, step, row) {
  if (step === 0) return manifest.special_tokens.sot;
  return 3 + ((step * 7919 + row * 104729) % (manifest.dims.n_vocab - 3));
}

/** Pseudo-random log-mel-like input: values in [-1, 1.5) (what Whisper's normalised features span). */
export function melInput(ort, manifest) {
  const n = manifest.dims.n_mels * manifest.n_frames;
  const data = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (s / 2 ** 32) * 2.5 - 1;
  }
  return new ort.Tensor('float32', data, [1, manifest.dims.n_mels, manifest.n_frames]);
}

// --- the benchmark -------------------------------------------------------------------------------------------------
async function timeDecoder(ort, manifest, decoder, cross, beam, steps, cpuNow) {
  const pass = async () => {
    let past = emptyPast(ort, manifest, beam);
    const times = [];
    times.cpu = [];
    for (let step = 0; step < steps; step++) {
      const tokens = Array.from({ length: beam }, (_, row) => forcedToken(manifest, step, row));
      const feeds = decoderFeeds(ort, manifest, tokens, past, cross);
      const c = cpuNow();
      const t = now();
      const out = await decoder.run(feeds);
      times.push(now() - t);
      times.cpu.push(cpuNow() - c);
      feeds.tokens.dispose?.();
      disposeAll(past);
      out.logits.dispose?.();
      past = nextPast(manifest, out);
    }
    disposeAll(past);
    return times;
  };
  await pass();                       // warm-up: the same cache lengths as the timed pass
  return pass();
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** cpuNow: optional () => CPU milliseconds used by the process so far (Node: process.cpuUsage). */
export async function runBenchmark(ort, { manifest, loadBytes, threads, runtime, options, emit, log = () => {},
                                          cpuNow = null, version = null }) {
  const cpu = cpuNow || (() => NaN);
  const cpuField = (xs) => (cpuNow ? { cpu_ms: round(xs) } : {});
  const base = {
    engine: 'onnxruntime-web',
    ort: ort.env.versions?.web ?? 'unknown',
    runtime,
    version,
    shape: manifest.shape,
    seed: manifest.seed,
    threads,
  };
  let initMs;
  {
    const bytes = await loadBytes(manifest.files.runtime_init);
    const t = now();
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    await session.run({ x: new ort.Tensor('float32', new Float32Array(1), [1]) });
    initMs = now() - t;
    emit({ ...base, precision: null, measure: 'init_ms', beam: null, value: round(initMs) });
    await session.release();
  }
  const mel = melInput(ort, manifest);
  for (const precision of options.precisions) {
    const line = (measure, value, extra = {}) =>
      emit({ ...base, precision, measure, beam: null, value: round(value), ...extra });
    log(`${runtime} ${manifest.shape} ${precision} ${threads} thread(s): creating sessions`);
    const { sessions, createMs, fetchMs } = await createSessions(ort, manifest, precision, loadBytes);
    const loadMs = createMs.encoder + createMs.cross_kv + createMs.decoder;
    line('load_ms', loadMs, { detail: { create_ms: Object.fromEntries(Object.entries(createMs).map(([k, v]) => [k, round(v)])),
                                        read_ms: round(fetchMs) } });
    line('load_total_ms', initMs + fetchMs + loadMs);

    log(`${runtime} ${manifest.shape} ${precision}: encoder x ${1 + options.encoderRuns}`);
    let audio;
    const encoderTimes = [];
    const encoderCpu = [];
    for (let r = 0; r <= options.encoderRuns; r++) {
      audio?.dispose?.();
      const c = cpu();
      const t = now();
      audio = (await sessions.encoder.run({ mel })).audio_features;
      if (r > 0) encoderTimes.push(now() - t), encoderCpu.push(cpu() - c);
    }
    line('encoder_ms', median(encoderTimes), { samples: encoderTimes.map(round), ...cpuField(median(encoderCpu)) });

    let cross;
    const crossTimes = [];
    const crossCpu = [];
    for (let r = 0; r <= options.encoderRuns; r++) {
      if (cross) disposeAll(cross);
      const c = cpu();
      const t = now();
      cross = await sessions.cross_kv.run({ audio_features: audio });
      if (r > 0) crossTimes.push(now() - t), crossCpu.push(cpu() - c);
    }
    line('cross_kv_ms', median(crossTimes), { samples: crossTimes.map(round), ...cpuField(median(crossCpu)) });
    audio.dispose?.();

    for (const beam of options.beams) {
      log(`${runtime} ${manifest.shape} ${precision}: decoder, beam ${beam}, ${options.steps} steps x 2`);
      const times = await timeDecoder(ort, manifest, sessions.decoder, cross, beam, options.steps, cpu);
      line('decoder_step_ms', mean(times), {
        beam,
        ...cpuField(mean(times.cpu)),
        detail: { steps: options.steps, median_ms: round(median(times)), first_ms: round(times[0]),
                  last_ms: round(times[times.length - 1]) },
      });
    }
    disposeAll(cross);
    await releaseSessions(sessions);
  }
  mel.dispose?.();
}

// --- browser: this file runs as a module worker of ort_page.html -----------------------------------------------
if (IS_WORKER) {
  self.onmessage = async ({ data }) => {
    const post = (msg) => self.postMessage(msg);
    try {
      const ort = await import(data.ortModule);
      ort.env.wasm.numThreads = data.threads;
      ort.env.wasm.wasmPaths = data.wasmPaths;
      const manifest = await (await fetch(`${data.modelDir}/manifest.json`)).json();
      const loadBytes = async (name) => new Uint8Array(await (await fetch(`${data.modelDir}/${name}`)).arrayBuffer());
      await runBenchmark(ort, {
        manifest, loadBytes, threads: data.threads, runtime: 'chromium', options: data.options, version: data.version,
        emit: (result) => post({ type: 'result', result }),
        log: (text) => post({ type: 'log', text }),
      });
      post({ type: 'done' });
    } catch (err) {
      post({ type: 'error', error: String(err?.stack || err) });
    }
  };
}

// --- command line ------------------------------------------------------------------------------------------------
function parseArgs(argv) {
  const args = { runtime: 'node', threads: 1, modelDir: null, quick: false };
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model-dir') args.modelDir = value();
    else if (a === '--runtime') args.runtime = value();
    else if (a === '--threads') args.threads = Number(value());
    else if (a === '--precisions') opts.precisions = value().split(',');
    else if (a === '--encoder-runs') opts.encoderRuns = Number(value());
    else if (a === '--steps') opts.steps = Number(value());
    else if (a === '--beams') opts.beams = value().split(',').map(Number);
    else if (a === '--quick') args.quick = true;
    else if (a === '-h' || a === '--help') args.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  args.options = { ...(args.quick ? QUICK : DEFAULTS), ...opts };
  const o = args.options;
  if (!args.help) {
    if (!args.modelDir) throw new Error('--model-dir is required');
    if (!['node', 'chromium'].includes(args.runtime)) throw new Error('--runtime is node or chromium');
    if (!(args.threads >= 1 && args.threads <= 16 && Number.isInteger(args.threads))) throw new Error('bad --threads');
    if (!(o.encoderRuns >= 1 && o.steps >= 1 && o.beams.every((b) => b >= 1))) throw new Error('bad counts');
    if (!o.precisions.every((p) => p === 'fp32' || p === 'int8')) throw new Error('--precisions: fp32,int8');
  }
  return args;
}

async function mainNode(args, repoRoot, path, fs) {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = args.threads;
  const manifest = JSON.parse(fs.readFileSync(path.join(args.modelDir, 'manifest.json'), 'utf8'));
  const loadBytes = async (name) => new Uint8Array(await fs.promises.readFile(path.join(args.modelDir, name)));
  await runBenchmark(ort, {
    manifest, loadBytes, threads: args.threads, runtime: 'node', options: args.options, version: process.version,
    emit: (r) => console.log(JSON.stringify(r)),
    log: (t) => console.error(`[ort] ${t}`),
    cpuNow: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
  });
}

async function mainChromium(args, repoRoot, path) {
  const { startServer } = await import('../lib/server.mjs');
  const { launchChromium, openPage } = await import('../lib/chromium.mjs');
  const modelDir = path.resolve(args.modelDir);
  if (!modelDir.startsWith(repoRoot + path.sep)) throw new Error(`--model-dir must be inside ${repoRoot}`);
  const server = await startServer({ root: repoRoot });
  const browser = await launchChromium();
  try {
    const page = await openPage(browser, `${server.url}/bench/ort/ort_page.html`, {
      onConsole: (text) => process.stderr.write(`[page] ${text}\n`),
      timeoutMs: 30 * 60 * 1000,
    });
    await page.exposeFunction('emitResult', (r) => console.log(JSON.stringify(r)));
    await page.exposeFunction('emitLog', (t) => console.error(`[ort] ${t}`));
    const error = await page.evaluate((config) => window.runOrtBenchmark(config), {
      ortModule: '/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs',
      wasmPaths: '/node_modules/onnxruntime-web/dist/',
      modelDir: '/' + path.relative(repoRoot, modelDir).split(path.sep).join('/'),
      threads: args.threads,
      options: args.options,
      version: browser.version(),
    });
    if (error) throw new Error(`in Chromium: ${error}`);
  } finally {
    await browser.close();
    await server.close();
  }
}

if (IS_NODE) {
  const { fileURLToPath } = await import('node:url');
  const path = await import('node:path');
  const fs = await import('node:fs');
  if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
    try {
      const args = parseArgs(process.argv.slice(2));
      if (args.help) {
        const text = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n\n')[0];
        console.log(text.replace(/^\/\/ ?/gm, ''));
      } else if (args.runtime === 'node') {
        await mainNode(args, repoRoot, path, fs);
      } else {
        await mainChromium(args, repoRoot, path);
      }
    } catch (err) {
      console.error(`ort_bench: ${err?.stack || err}`);
      process.exitCode = 1;
    }
  }
}
