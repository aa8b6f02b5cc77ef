// Prints the benchmark's summary from the JSON lines of bench/e2e/earshot_bench.mjs and bench/ort (any number of
// files; other lines are ignored): earshot per model, runtime and thread count; earshot / onnxruntime-web ratios;
// and the project's targets with PASS / FAIL / n/a.
//
//   node bench/e2e/report.mjs FILE.jsonl ...
import { readFileSync } from 'node:fs';

const TARGETS = {
  encoderVsOrt: 0.5,        // tiny.en 30-s encoder, 1 thread: <= half of onnxruntime-web int8's time
  default10sMs: 300,        // default model: 10 s of speech in <= 0.3 s, 1 thread, Chromium
  twoThreadSpeedup: 1.7,    // 2 threads >= 1.7x faster than 1
  heapSlackMb: 64,          // peak WASM memory <= model file + 64 MB
  coldStartMs: 1000,        // compile + load the default model <= 1 s in Chromium (DESIGN.md section 10)
};

function readRecords(files) {
  const out = [];
  for (const file of files) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const r = JSON.parse(line);
        if (r.engine && r.measure) out.push(r);
      } catch {
        // progress or partial lines
      }
    }
  }
  return out;
}

const fmt = (x, digits = 0) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(digits));
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? pad(c, widths[i]) : lpad(c, widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function main(files) {
  const records = readRecords(files);
  const es = records.filter((r) => r.engine === 'earshot');
  const ort = records.filter((r) => r.engine === 'onnxruntime-web');
  const get = (list, where) => list.find((r) => Object.entries(where).every(([k, v]) => r[k] === v));
  const val = (list, where) => get(list, where)?.value ?? null;
  const lines = [];
  const say = (s = '') => lines.push(s);

  // --- earshot: one row per job ---
  const jobs = [];
  for (const r of es) {
    const key = `${r.runtime}|${r.model}|${r.build}|${r.threads}`;
    if (!jobs.some((j) => j.key === key)) jobs.push({ key, runtime: r.runtime, model: r.model, build: r.build,
                                                      threads: r.threads, shape: r.shape, precision: r.precision });
  }
  const order = (j) => [j.runtime === 'chromium' ? 0 : 1, j.model, j.threads, j.build === 'st' ? 0 : 1];
  jobs.sort((a, b) => {
    const x = order(a), y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
  });
  const rows = [];
  const missing = [];
  for (const j of jobs) {
    const w = { runtime: j.runtime, model: j.model, build: j.build, threads: j.threads };
    const un = get(es, { ...w, measure: 'unavailable' });
    const name = `${j.runtime} ${j.model} ${j.build === 'mt' ? 'pthreads' : 'plain'} ${j.threads}t`;
    if (un) {
      rows.push([name, 'n/a', '', '', '', '', '', '', '', '', '']);
      missing.push(`  ${name}: ${un.detail?.reason ?? 'unavailable'}`);
      continue;
    }
    const m = (measure, extra = {}) => val(es, { ...w, measure, ...extra });
    const peak = m('peak_wasm_bytes');
    const peakRec = get(es, { ...w, measure: 'peak_wasm_bytes' });
    rows.push([
      name,
      fmt(m('load_ms')),
      fmt(m('encoder_ms', { clip_s: 30, beam: 1 }) ?? m('encoder_ms', { clip_s: 10, beam: 1 })),
      fmt(m('encoder_ms_unpadded', { clip_s: 10 })),
      fmt(m('decoder_token_ms', { clip_s: 30, beam: 1 }) ?? m('decoder_token_ms', { clip_s: 10, beam: 1 }), 1),
      fmt(m('decoder_token_ms', { clip_s: 30, beam: 5 }) ?? m('decoder_token_ms', { clip_s: 10, beam: 5 }), 1),
      `${fmt(m('total_ms', { clip_s: 10, beam: 5 }))} / ${fmt(m('rtf', { clip_s: 10, beam: 5 }), 3)}`,
      `${fmt(m('total_ms', { clip_s: 30, beam: 5 }))} / ${fmt(m('rtf', { clip_s: 30, beam: 5 }), 3)}`,
      `${fmt(m('tokens', { clip_s: 10, beam: 5 }))}/${fmt(m('tokens', { clip_s: 30, beam: 5 }))}`,
      peak == null ? '-' : fmt(peak / 2 ** 20),
      peakRec ? fmt(peakRec.detail.model_bytes / 2 ** 20) : '-',
    ]);
  }
  say('earshot end to end (median ms; beam 5 unless noted; Whisper-shaped models encode the full 30-s window)');
  say(table(['job', 'load', 'enc 30s', 'enc 10s unpadded', 'tok b1', 'tok b5', '10 s: total/RTF',
             '30 s: total/RTF', 'tokens 10/30', 'peak MB', 'file MB'], rows));
  say('  tok bN: per decoder step with N beams (search included), from the 30-s clip; enc 10s unpadded: the');
  say('  variable-length advantage (not part of the Whisper-shaped comparison). Random-weight models decode a forced');
  say('  number of tokens (no early EOT).');
  for (const m of missing) say(m);

  // --- earshot vs onnxruntime-web ---
  say();
  say('earshot / onnxruntime-web (same shapes; < 1 means earshot is faster)');
  const cmpRows = [];
  for (const j of jobs) {
    if (j.shape === 'default' || get(es, { runtime: j.runtime, model: j.model, build: j.build, threads: j.threads,
                                            measure: 'unavailable' })) continue;
    const w = { runtime: j.runtime, model: j.model, build: j.build, threads: j.threads };
    const o = { runtime: j.runtime, shape: j.shape, threads: j.threads };
    const enc = val(es, { ...w, measure: 'encoder_ms', clip_s: 30, beam: 1 });
    for (const op of ['int8', 'fp32']) {
      const oe = val(ort, { ...o, precision: op, measure: 'encoder_ms' });
      const ot1 = val(ort, { ...o, precision: op, measure: 'decoder_step_ms', beam: 1 });
      const ot5 = val(ort, { ...o, precision: op, measure: 'decoder_step_ms', beam: 5 });
      // load_total_ms (start-up + reading + sessions) is the counterpart of earshot's load_ms.
      const ol = val(ort, { ...o, precision: op, measure: 'load_total_ms' }) ??
                 val(ort, { ...o, precision: op, measure: 'load_ms' });
      if (oe == null && ot1 == null) continue;
      const t1 = val(es, { ...w, measure: 'decoder_token_ms', clip_s: 30, beam: 1 });
      const t5 = val(es, { ...w, measure: 'decoder_token_ms', clip_s: 30, beam: 5 });
      const ratio = (a, b) => (a == null || b == null ? '-' : (a / b).toFixed(2));
      cmpRows.push([`${j.runtime} ${j.model} ${j.threads}t vs ORT ${op}`, `${fmt(enc)} / ${fmt(oe)}`, ratio(enc, oe),
                    `${fmt(t1, 1)} / ${fmt(ot1, 1)}`, ratio(t1, ot1), `${fmt(t5, 1)} / ${fmt(ot5, 1)}`, ratio(t5, ot5),
                    ratio(val(es, { ...w, measure: 'load_ms' }), ol)]);
    }
  }
  if (cmpRows.length) {
    say(table(['comparison', 'encoder ms', 'ratio', 'tok b1 ms', 'ratio', 'tok b5 ms', 'ratio', 'load ratio'], cmpRows));
    say('  ORT: encoder without the cross-attention K/V (earshot computes those in its prompt step); decoder steps');
    say('  with forced tokens and no search. earshot: the same encoder work; steps include the beam search.');
  } else {
    say('  no onnxruntime-web results (bench/ort/run.sh missing or skipped)');
  }

  // --- targets ---
  say();
  say('targets');
  const checks = [];
  const check = (what, value, target, ok, note = '') =>
    checks.push([what, value, target, ok == null ? 'n/a' : ok ? 'PASS' : 'FAIL', note]);
  for (const runtime of ['chromium', 'node']) {
    const e = val(es, { runtime, model: 'tiny.en-int8', build: 'st', threads: 1, measure: 'encoder_ms', clip_s: 30,
                        beam: 1 });
    const o = val(ort, { runtime, shape: 'tiny.en', precision: 'int8', threads: 1, measure: 'encoder_ms' });
    const r = e != null && o != null ? e / o : null;
    check(`tiny.en 30-s encoder, 1 thread, ${runtime}`, r == null ? `${fmt(e)} ms vs ORT ${fmt(o)} ms` :
          `${fmt(e)} / ${fmt(o)} ms = ${r.toFixed(2)}x`, `<= ${TARGETS.encoderVsOrt}x ORT int8`,
          r == null ? null : r <= TARGETS.encoderVsOrt, e == null ? 'earshot not measured' : o == null ? 'no ORT result' : '');
  }
  const defaults = [...new Set(es.filter((r) => r.shape === 'default').map((r) => r.model))];
  if (!defaults.length) {
    check('default model: 10 s of speech, 1 thread, Chromium', 'no default model yet', `<= ${TARGETS.default10sMs} ms`,
          null);
    check('default model cold start (compile + load), Chromium', 'no default model yet', `<= ${TARGETS.coldStartMs} ms`,
          null);
  }
  for (const model of defaults) {
    for (const beam of [5, 1]) {
      const t = val(es, { runtime: 'chromium', model, build: 'st', threads: 1, measure: 'total_ms', clip_s: 10, beam });
      check(`${model}: 10 s of speech, 1 thread, Chromium, beam ${beam}`, t == null ? 'not measured' : `${fmt(t)} ms`,
            `<= ${TARGETS.default10sMs} ms`, t == null ? null : t <= TARGETS.default10sMs,
            beam === 5 ? 'default beam size' : '');
    }
    const l = val(es, { runtime: 'chromium', model, build: 'st', threads: 1, measure: 'load_ms' });
    check(`${model}: cold start (compile + fetch + load), Chromium`, l == null ? 'not measured' : `${fmt(l)} ms`,
          `<= ${TARGETS.coldStartMs} ms`, l == null ? null : l <= TARGETS.coldStartMs);
  }
  for (const j of jobs.filter((x) => x.threads === 2)) {
    const two = { runtime: j.runtime, model: j.model, build: j.build, threads: 2 };
    if (get(es, { ...two, measure: 'unavailable' })) {
      check(`2 threads vs 1: ${j.runtime} ${j.model}`, 'no 2-thread result', `>= ${TARGETS.twoThreadSpeedup}x`, null,
            get(es, { ...two, measure: 'unavailable' }).detail?.reason ?? '');
      continue;
    }
    for (const [label, measure, extra] of [['30-s total, beam 5', 'total_ms', { clip_s: 30, beam: 5 }],
                                           ['encoder', 'encoder_ms', { clip_s: 30, beam: 1 }]]) {
      const t2 = val(es, { ...two, measure, ...extra });
      for (const build of ['st', 'mt']) {
        const t1 = val(es, { runtime: j.runtime, model: j.model, build, threads: 1, measure, ...extra });
        if (t1 == null) continue;
        const s = t2 ? t1 / t2 : null;
        check(`2 threads vs 1 (${build === 'st' ? 'plain' : 'pthreads'} build): ${j.runtime} ${j.model}, ${label}`,
              s == null ? '-' : `${s.toFixed(2)}x`, `>= ${TARGETS.twoThreadSpeedup}x`,
              s == null ? null : s >= TARGETS.twoThreadSpeedup);
      }
    }
  }
  for (const r of es.filter((x) => x.measure === 'peak_wasm_bytes')) {
    const mb = r.value / 2 ** 20, fileMb = r.detail.model_bytes / 2 ** 20;
    check(`peak WASM memory: ${r.runtime} ${r.model} ${r.build} ${r.threads}t`, `${fmt(mb)} MB`,
          `<= ${fmt(fileMb)} + ${TARGETS.heapSlackMb} MB`, r.value <= r.detail.budget_bytes);
  }
  say(table(['target', 'measured', 'target value', 'result', 'note'], checks));
  console.log(lines.join('\n'));
}

const files = process.argv.slice(2);
if (!files.length) {
  console.error('usage: node bench/e2e/report.mjs FILE.jsonl ...');
  process.exit(2);
}
main(files);
