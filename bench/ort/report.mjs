// Gathers the JSON lines of ort_bench.mjs runs into one results file and prints a table.
//
//   node bench/ort/report.mjs RESULTS.jsonl OUT.json [--meta META.json]
//
// OUT.json: { "generated": ISO time, "meta": {...from --meta: machine, load averages, versions...},
//             "results": [ every ort_bench.mjs line ],
//             "summary": { "<shape>/<runtime>/<threads>t/<precision>": { "init_ms", "load_ms", "load_total_ms",
//                          "encoder_ms", "cross_kv_ms", "decoder_step_ms_beam1", "decoder_step_ms_beam5", and in
//                          Node the same with a "cpu_" prefix where measured } } }
// (measures: see bench/ort/ort_bench.mjs; earshot's load_ms compares with load_total_ms)
// The summary is what the project's bench/run.sh divides earshot's numbers by (ratio earshot/ORT per measure).
import fs from 'node:fs';

const [input, output, ...rest] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node bench/ort/report.mjs RESULTS.jsonl OUT.json [--meta META.json]');
  process.exit(2);
}
const metaIndex = rest.indexOf('--meta');
const meta = metaIndex >= 0 ? JSON.parse(fs.readFileSync(rest[metaIndex + 1], 'utf8')) : {};

const results = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.trim().startsWith('{'))
  .map((l) => JSON.parse(l));

const summary = {};
const initByRun = {};
for (const r of results) {
  const runKey = `${r.shape}/${r.runtime}/${r.threads}t`;
  if (r.measure === 'init_ms') {
    initByRun[runKey] = r.value;
    continue;
  }
  const key = `${runKey}/${r.precision}`;
  const row = (summary[key] ??= { shape: r.shape, runtime: r.runtime, threads: r.threads, precision: r.precision });
  const name = r.beam ? `${r.measure}_beam${r.beam}` : r.measure;
  row[name] = r.value;
  if (r.cpu_ms !== undefined) row[`cpu_${name}`] = r.cpu_ms;
}
for (const row of Object.values(summary)) {
  row.init_ms = initByRun[`${row.shape}/${row.runtime}/${row.threads}t`] ?? null;
}

fs.writeFileSync(output, JSON.stringify({ generated: new Date().toISOString(), meta, results, summary }, null, 1) + '\n');

const fmt = (row, name) => {
  const v = row[name];
  if (v === undefined || v === null) return '-';
  const cpu = row[`cpu_${name}`];
  const text = v >= 100 ? v.toFixed(0) : v.toFixed(1);
  return cpu === undefined ? text : `${text} (${cpu >= 100 ? cpu.toFixed(0) : cpu.toFixed(1)})`;
};
const columns = [
  ['shape', 8, (r) => r.shape],
  ['runtime', 8, (r) => r.runtime],
  ['thr', 3, (r) => String(r.threads)],
  ['prec', 4, (r) => r.precision],
  ['init', 6, (r) => fmt(r, 'init_ms')],
  ['load', 6, (r) => fmt(r, 'load_ms')],
  ['total', 6, (r) => fmt(r, 'load_total_ms')],
  ['encoder 30 s', 15, (r) => fmt(r, 'encoder_ms')],
  ['cross K/V', 13, (r) => fmt(r, 'cross_kv_ms')],
  ['step beam 1', 13, (r) => fmt(r, 'decoder_step_ms_beam1')],
  ['step beam 5', 13, (r) => fmt(r, 'decoder_step_ms_beam5')],
];
const line = (cells) => cells.map((c, i) => (i < 4 ? c.padEnd(columns[i][1]) : c.padStart(columns[i][1]))).join('  ');
console.log('\nonnxruntime-web (WASM) baseline, milliseconds (wall; Node adds process CPU time in parentheses)');
console.log(line(columns.map((c) => c[0])));
console.log('-'.repeat(line(columns.map((c) => c[0])).length));
const order = (r) => [r.shape, r.runtime === 'node' ? 0 : 1, r.threads, r.precision];
const rows = Object.values(summary).sort((a, b) => {
  const x = order(a), y = order(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
});
for (const r of rows) console.log(line(columns.map((c) => c[2](r))));
if (meta.load_before || meta.load_after) console.log(`\nload average before: ${meta.load_before}; after: ${meta.load_after}`);
console.log(`wrote ${output}`);
