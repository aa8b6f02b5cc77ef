// One end-to-end benchmark job: one model, one WebAssembly build, one thread count, in a fresh module instance (so
// that its WebAssembly memory, which only grows, ends at this job's peak). The same code runs under Node (a child
// process of earshot_bench.mjs) and in Chromium (a module worker of page.html).
//
// Measures, as JSON records (same fields as bench/ort/ort_bench.mjs's, plus model, build, clip_s):
//   load_ms            compile + instantiate the .wasm, read the model file, copy it into the heap, verify and load
//                      (detail: compile_ms, read_ms, model_ms)
//   encoder_ms         log-mel -> encoder output for the clip (mel_ms separately); Whisper-shaped models always
//                      encode the full 30-s window (shorter clips are padded), as Whisper does
//   encoder_ms_unpadded  the 10-s clip encoded at its own length, for Whisper-shaped files that allow variable-length
//                      audio: the variable-length advantage, reported apart from the Whisper-shaped comparison
//   decoder_token_ms   (decode - prompt) / decoder steps: one beam-search step for all beams (decoder, log-softmax,
//                      top-k, cache reorder) averaged over the run; prompt_ms (decoder start with the
//                      cross-attention K/V, and the prompt) is reported apart
//   total_ms, rtf      the whole transcribe() call as JavaScript sees it, and total / clip length
//   tokens             tokens decoded (forced on random weights: EOT is suppressed until the budget is used)
//   peak_wasm_bytes    WebAssembly memory after the job (detail: model file bytes and the target's budget)
// Each value is the median of `runs` runs after one warm-up transcription.

export const WINDOW_SECONDS = 30;
// Forced token budgets per clip on random weights: about 3.2 tokens per second of English speech (2.5 words/s,
// 1.3 tokens per word), rounded to multiples of 16.
export const FORCED_TOKENS = { 10: 32, 30: 96 };
export const HEAP_SLACK_BYTES = 64 * 1024 * 1024;

const now = () => performance.now();
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// Four significant digits below 1000 (an RTF of 0.0312 keeps its digits), whole numbers above.
const round = (x) => (!Number.isFinite(x) ? x : Math.abs(x) >= 1000 ? Math.round(x) : Number(x.toPrecision(4)));

// 16-bit PCM mono WAV -> Float32Array (the clips prepare.py writes; anything else is refused).
export function decodeWav16(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o) => String.fromCharCode(...bytes.subarray(o, o + 4));
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let fmt = null;
  for (let o = 12; o + 8 <= bytes.length;) {
    const id = tag(o), size = dv.getUint32(o + 4, true), body = o + 8;
    if (id === 'fmt ') {
      fmt = { format: dv.getUint16(body, true), channels: dv.getUint16(body + 2, true),
              rate: dv.getUint32(body + 4, true), bits: dv.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (!fmt || fmt.format !== 1 || fmt.channels !== 1 || fmt.bits !== 16) throw new Error('expected 16-bit PCM mono');
      const n = Math.floor(Math.min(size, bytes.length - body) / 2);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(body + 2 * i, true) / 32768;
      return { samples: out, sampleRate: fmt.rate };
    }
    o = body + size + (size & 1);
  }
  throw new Error('no data chunk');
}

/**
 * job: { model: {name, shape, dtype, whisper_shaped, random_weights, bytes}, build: 'st'|'mt', threads, beams,
 *        clips: [{seconds, samples: Float32Array, reference_text}], runs, runtime }
 * env: { createModule: () => Promise<module> (compiles and instantiates), readModel: () => Promise<Uint8Array>,
 *        emit(record), log(text), context: {...} (merged into every record's detail-free fields) }
 */
export async function runJob(job, env) {
  const { model, build, threads } = job;
  const base = { engine: 'earshot', runtime: job.runtime, model: model.name, shape: model.shape,
                 precision: model.dtype, build, threads, ...(env.context || {}) };
  const emit = (measure, value, extra = {}) =>
    env.emit({ ...base, measure, clip_s: null, beam: null, value: value == null ? null : round(value), ...extra });
  const say = (text) => env.log(`${job.runtime} ${model.name} ${build}/${threads}t: ${text}`);

  let t = now();
  const mod = await env.createModule();
  const compileMs = now() - t;
  const engine = new mod.Engine();
  try {
    t = now();
    const bytes = await env.readModel();
    const readMs = now() - t;
    t = now();
    const view = engine.modelBuffer(bytes.length);
    if (!view) throw new Error(`no memory for a model of ${bytes.length} bytes`);
    view.set(bytes);
    const loaded = engine.loadModel();
    if (loaded.error) throw new Error(`loading ${model.name}: ${loaded.error}`);
    const modelMs = now() - t;
    emit('load_ms', compileMs + readMs + modelMs,
         { detail: { compile_ms: round(compileMs), read_ms: round(readMs), model_ms: round(modelMs) } });

    const set = engine.setThreads(threads);
    if (set.error) {
      emit('unavailable', null, { detail: { reason: set.error } });
      say(`skipped: ${set.error}`);
      return;
    }
    const info = engine.info();
    const windowSamples = info.nAudioCtx * 2 * 160;
    const forced = model.random_weights;

    // Audio goes into the heap once per clip, outside the timed calls.
    const setAudio = (samples, padTo) => {
      const n = Math.max(samples.length, padTo || 0);
      const buf = engine.audioBuffer(n);
      if (!buf) throw new Error('no memory for the audio');
      buf.fill(0);
      buf.set(samples);
    };
    const transcribe = (beam, tokens) => {
      const options = { beamSize: beam };
      if (tokens) Object.assign(options, { maxTokens: tokens, minTokens: tokens });
      const t0 = now();
      const r = engine.transcribe(options);
      const wall = now() - t0;
      if (r.error) throw new Error(`transcribing with ${model.name}: ${r.error}`);
      const tm = r.timings;
      return { wall, mel: tm.melMs, encode: tm.encodeMs, decode: tm.decodeMs, prompt: tm.promptMs,
               steps: tm.decodeSteps, tokens: r.tokens.length, text: r.text,
               perToken: tm.decodeSteps > 0 ? (tm.decodeMs - tm.promptMs) / tm.decodeSteps : NaN };
    };

    const first = job.clips[0];
    say('warm-up');
    setAudio(first.samples, model.whisper_shaped ? windowSamples : 0);
    transcribe(1, forced ? 8 : 0);

    for (const clip of job.clips) {
      setAudio(clip.samples, model.whisper_shaped ? windowSamples : 0);
      const tokens = forced ? FORCED_TOKENS[clip.seconds] : 0;
      for (const beam of job.beams) {
        say(`${clip.seconds}-s clip, beam ${beam}${forced ? `, ${tokens} forced tokens` : ''}, ${job.runs} run(s)`);
        const rs = [];
        for (let i = 0; i < job.runs; i++) rs.push(transcribe(beam, tokens));
        const m = (key) => median(rs.map((r) => r[key]));
        const extra = { clip_s: clip.seconds, beam };
        emit('total_ms', m('wall'), { ...extra, samples: rs.map((r) => round(r.wall)) });
        emit('rtf', m('wall') / 1000 / clip.seconds, extra);
        emit('encoder_ms', m('encode'), { ...extra, samples: rs.map((r) => round(r.encode)),
                                          detail: { window_s: model.whisper_shaped ? WINDOW_SECONDS : clip.seconds } });
        emit('mel_ms', m('mel'), extra);
        emit('prompt_ms', m('prompt'), extra);
        emit('decoder_token_ms', m('perToken'), { ...extra, samples: rs.map((r) => round(r.perToken)),
                                                  detail: { steps: rs[0].steps } });
        const textDetail = forced ? {} : { text: rs[0].text, reference_text: clip.reference_text ?? null };
        emit('tokens', m('tokens'), { ...extra, detail: { forced, ...textDetail } });
      }
    }

    // The variable-length advantage, apart: the shortest clip at its own length.
    if (model.whisper_shaped && info.variableLengthAudio) {
      const clip = job.clips.reduce((a, b) => (a.seconds <= b.seconds ? a : b));
      if (clip.seconds < WINDOW_SECONDS) {
        setAudio(clip.samples, 0);
        const rs = [];
        for (let i = 0; i < job.runs; i++) rs.push(transcribe(1, 8));
        emit('encoder_ms_unpadded', median(rs.map((r) => r.encode)),
             { clip_s: clip.seconds, samples: rs.map((r) => round(r.encode)), detail: { window_s: clip.seconds } });
      }
    }

    const heap = mod.Engine.heapBytes();
    emit('peak_wasm_bytes', heap, { detail: { model_bytes: info.fileBytes,
                                              budget_bytes: info.fileBytes + HEAP_SLACK_BYTES } });
  } finally {
    engine.delete();
  }
}

// --- browser: a module worker of page.html runs one job --------------------------------------------------------
const IS_WORKER = typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope;
if (IS_WORKER) {
  self.onmessage = async ({ data }) => {
    const post = (msg) => self.postMessage(msg);
    try {
      const fetchBytes = async (url) => {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
        return new Uint8Array(await res.arrayBuffer());
      };
      const clips = [];
      for (const c of data.clips) clips.push({ ...c, samples: decodeWav16(await fetchBytes(c.url)).samples });
      await runJob({ ...data.job, clips }, {
        // The glue compiles the .wasm next to it with instantiateStreaming, as a page would.
        createModule: async () => (await import(data.moduleUrl)).default(),
        readModel: () => fetchBytes(data.modelUrl),
        emit: (result) => post({ type: 'result', result }),
        log: (text) => post({ type: 'log', text }),
        context: { cross_origin_isolated: self.crossOriginIsolated === true },
      });
      post({ type: 'done' });
    } catch (err) {
      post({ type: 'error', error: String(err?.stack || err) });
    }
  };
}
