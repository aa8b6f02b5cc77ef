// End-to-end earshot benchmark in Node and headless Chromium: load time, encoder time, per-token decoder time at
// each beam size, total time and real-time factor for the 10-s and 30-s clips, and peak WebAssembly memory, per
// model and thread count. Models and clips come from bench/e2e/prepare.py (build/bench-models/manifest.json).
//
//   node bench/e2e/earshot_bench.mjs [--runtime node|chromium] [--threads 1,2]
//        [--models NAME,...|all] [--beams 1,5] [--clips 10,30] [--runs 3] [--quick] [--mt-one]
//        [--manifest build/bench-models/manifest.json] [--wasm build/e2e-wasm] [--wasm-mt build/e2e-wasm-mt]
//        [--job-timeout 1800]
//
// One thread runs the plain WebAssembly build (--wasm), what a page without cross-origin isolation gets; more
// threads run the pthreads build (--wasm-mt, CMake option EARSHOT_WASM_THREADS=ON); --mt-one adds a 1-thread run of
// the pthreads build (its own baseline). Without that build, multi-thread jobs print an `unavailable` record.
// Models: every int8 model plus the default model by default; `all` adds the f16 ones; --quick: tiny.en-int8 and
// the default model, 1 run each.
// Every job (model x build x threads) gets a fresh engine: a child process under Node, a new module worker in
// Chromium. Output: one JSON line per measure on stdout (see bench_core.mjs), progress on stderr.
// Run it with plain `node` (playwright-core needs Node's fetch); the Node jobs' child processes run with
// --no-experimental-fetch, which Emscripten 3.1.6's loader needs.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { decodeWav16, runJob } from './bench_core.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');

function usage() {
  return readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n\n')[0].replace(/^\/\/ ?/gm, '');
}

function parseArgs(argv) {
  const a = { runtime: 'node', threads: [1, 2], models: null, beams: [1, 5], clips: [10, 30], runs: null,
              quick: false, mtOne: false, manifest: 'build/bench-models/manifest.json', wasm: 'build/e2e-wasm',
              wasmMt: 'build/e2e-wasm-mt', child: null, jobTimeout: 1800 };
  const list = (v, f = Number) => v.split(',').filter(Boolean).map(f);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--runtime') a.runtime = value();
    else if (arg === '--threads') a.threads = list(value());
    else if (arg === '--models') a.models = value();
    else if (arg === '--beams') a.beams = list(value());
    else if (arg === '--clips') a.clips = list(value());
    else if (arg === '--runs') a.runs = Number(value());
    else if (arg === '--quick') a.quick = true;
    else if (arg === '--mt-one') a.mtOne = true;
    else if (arg === '--manifest') a.manifest = value();
    else if (arg === '--wasm') a.wasm = value();
    else if (arg === '--wasm-mt') a.wasmMt = value();
    else if (arg === '--child') a.child = value();
    else if (arg === '--job-timeout') a.jobTimeout = Number(value());
    else if (arg === '-h' || arg === '--help') a.help = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (a.runs == null) a.runs = a.quick ? 1 : 3;
  if (!['node', 'chromium'].includes(a.runtime)) throw new Error('--runtime is node or chromium');
  if (!(a.runs >= 1 && Number.isInteger(a.runs))) throw new Error('bad --runs');
  if (!a.threads.every((t) => Number.isInteger(t) && t >= 1 && t <= 16)) throw new Error('bad --threads');
  if (!a.beams.every((b) => Number.isInteger(b) && b >= 1 && b <= 64)) throw new Error('bad --beams');
  if (!a.clips.every((c) => c === 10 || c === 30)) throw new Error('--clips: 10 and/or 30');
  return a;
}

function pickModels(manifest, args) {
  const all = manifest.models;
  if (args.models === 'all') return all;
  if (args.models) {
    return args.models.split(',').filter(Boolean).map((name) => {
      const m = all.find((x) => x.name === name);
      if (!m) throw new Error(`no model ${name} in the manifest (has: ${all.map((x) => x.name).join(', ')})`);
      return m;
    });
  }
  if (args.quick) return all.filter((m) => m.name === 'tiny.en-int8' || !m.random_weights);
  return all.filter((m) => m.dtype === 'int8' || !m.random_weights);
}

// (build, threads) pairs to run, with the build folder, or the reason it cannot run.
function buildsFor(args) {
  const ready = (dir) => existsSync(path.resolve(REPO_ROOT, dir, 'earshot.mjs'));
  const out = [];
  const add = (build, threads) => {
    const dir = build === 'mt' ? args.wasmMt : args.wasm;
    out.push({ build, threads, dir, missing: ready(dir) ? null :
      `no ${build === 'mt' ? 'pthreads ' : ''}WebAssembly build in ${dir}` });
  };
  for (const t of args.threads) add(t === 1 ? 'st' : 'mt', t);
  if (args.mtOne) add('mt', 1);
  return out;
}

const log = (text) => process.stderr.write(`[e2e] ${text}\n`);
const print = (record) => process.stdout.write(JSON.stringify(record) + '\n');

function unavailable(runtime, model, b) {
  print({ engine: 'earshot', runtime, model: model.name, shape: model.shape, precision: model.dtype, build: b.build,
          threads: b.threads, measure: 'unavailable', clip_s: null, beam: null, value: null,
          detail: { reason: b.missing } });
}

// --- Node: one child process per job -----------------------------------------------------------------------------
async function runChild(spec) {
  const job = JSON.parse(spec);
  const dir = path.resolve(REPO_ROOT, job.dir);
  // The pthreads glue starts earshot.worker.js, a CommonJS script; under the repository's "type": "module" it
  // would load as an ES module and fail in every worker.
  if (existsSync(path.join(dir, 'earshot.worker.js')) && !existsSync(path.join(dir, 'package.json'))) {
    throw new Error(`${job.dir} needs a package.json with {"type": "commonjs"} for earshot.worker.js under Node ` +
                    '(the CMake build writes it)');
  }
  // The ES6 Emscripten glue looks for CommonJS globals under Node.
  globalThis.require = createRequire(pathToFileURL(path.join(dir, 'earshot.mjs')));
  globalThis.__dirname = dir;
  const clips = job.clips.map((c) => ({ ...c, samples: decodeWav16(readFileSync(path.resolve(REPO_ROOT, c.path))).samples }));
  await runJob({ ...job, clips }, {
    createModule: async () => {
      const { default: create } = await import(pathToFileURL(path.join(dir, 'earshot.mjs')).href);
      return create({ wasmBinary: readFileSync(path.join(dir, 'earshot.wasm')) });
    },
    readModel: async () => new Uint8Array(readFileSync(path.resolve(REPO_ROOT, job.model.path))),
    emit: print,
    log,
  });
}

function spawnChild(job, timeoutS) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-experimental-fetch', fileURLToPath(import.meta.url), '--child',
                                           JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`job ${job.model.name} ${job.build}/${job.threads}t ${signal ? `killed (${signal}` +
        `${signal === 'SIGKILL' ? `, over --job-timeout ${timeoutS} s` : ''})` : `exited with ${code}`}`));
    });
  });
}

// --- Chromium: one module worker per job ---------------------------------------------------------------------------
async function runChromium(jobs, timeoutS) {
  const { startServer } = await import('../lib/server.mjs');
  const { launchChromium, openPage } = await import('../lib/chromium.mjs');
  const server = await startServer({ root: REPO_ROOT });
  const browser = await launchChromium();
  const url = (p) => '/' + path.relative(REPO_ROOT, path.resolve(REPO_ROOT, p)).split(path.sep).join('/');
  let failures = 0;
  try {
    const page = await openPage(browser, `${server.url}/bench/e2e/page.html`, {
      onConsole: (text) => process.stderr.write(`[page] ${text}\n`),
      timeoutMs: 60 * 60 * 1000,
    });
    await page.exposeFunction('emitResult', (r) => print(r));
    await page.exposeFunction('emitLog', (t) => log(t));
    const env = await page.evaluate(() => ({ cores: navigator.hardwareConcurrency, ua: navigator.userAgent }));
    log(`chromium: ${env.ua}, hardwareConcurrency ${env.cores}`);
    for (const job of jobs) {
      let timer;
      const overtime = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`job ${job.model.name} ${job.build}/${job.threads}t in Chromium ` +
                                                  `ran over --job-timeout ${timeoutS} s`)), timeoutS * 1000);
      });
      const error = await Promise.race([overtime, page.evaluate((config) => window.runEarshotJob(config), {
        moduleUrl: `${url(job.dir)}/earshot.mjs`,
        modelUrl: url(job.model.path),
        clips: job.clips.map((c) => ({ seconds: c.seconds, reference_text: c.reference_text, url: url(c.path) })),
        job: { ...job, clips: undefined },
      })]).finally(() => clearTimeout(timer));
      if (error) {
        failures++;
        log(`job ${job.model.name} ${job.build}/${job.threads}t failed in Chromium: ${error}`);
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
  if (failures) throw new Error(`${failures} Chromium job(s) failed`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) return console.log(usage());
  if (args.child) {
    // Exit explicitly: the pthreads build's workers would keep the process alive. (stdout to a pipe or file is
    // synchronous on Linux, so nothing printed is lost.)
    try {
      await runChild(args.child);
    } catch (err) {
      console.error(`earshot_bench job: ${err?.stack || err}`);
      process.exit(1);
    }
    process.exit(0);
  }

  const manifestPath = path.resolve(REPO_ROOT, args.manifest);
  if (!existsSync(manifestPath)) throw new Error(`${args.manifest} is missing: run bench/e2e/prepare.py first`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  if (manifest.default_model) log(manifest.default_model);
  const clips = args.clips.map((s) => {
    const c = manifest.clips[String(s)];
    if (!c) throw new Error(`the manifest has no ${s}-s clip`);
    return c;
  });
  const jobs = [];
  for (const model of pickModels(manifest, args)) {
    for (const b of buildsFor(args)) {
      if (b.missing) {
        unavailable(args.runtime, model, b);
        continue;
      }
      jobs.push({ runtime: args.runtime, model, build: b.build, threads: b.threads, dir: b.dir, beams: args.beams,
                  clips, runs: args.runs });
    }
  }
  if (args.runtime === 'chromium') return runChromium(jobs, args.jobTimeout);
  let failures = 0;
  for (const job of jobs) {
    try {
      await spawnChild(job, args.jobTimeout);
    } catch (err) {
      failures++;
      log(String(err.message || err));
    }
  }
  if (failures) throw new Error(`${failures} job(s) failed`);
}

main().catch((err) => {
  console.error(`earshot_bench: ${err?.stack || err}`);
  process.exitCode = 1;
});
