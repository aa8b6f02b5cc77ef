// Static file server for the browser benchmarks, cross-origin isolated so that WebAssembly threads
// (SharedArrayBuffer) are available to the page and its workers.
//
// API (keep it this small; bench/ort and bench/e2e both use it):
//
//   import { startServer } from '../lib/server.mjs';
//   const server = await startServer({ root: '/work/main' });   // options: root (required), port = 0 (any free),
//                                                               //          host = '127.0.0.1', log = false
//   server.url      -> 'http://127.0.0.1:PORT'  (no trailing slash; files are at server.url + '/path/under/root')
//   server.port     -> the port
//   await server.close();
//
// Every response carries Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp and
// Cross-Origin-Resource-Policy: same-origin, and Cache-Control: no-store (a benchmark must not time a warm HTTP
// cache by accident). Only GET and HEAD; paths outside `root` are refused; files are streamed, so model files of
// hundreds of MB are fine. Run as a script to serve a folder by hand:
//   node bench/lib/server.mjs [ROOT] [PORT]
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wav': 'audio/wav',
  '.svg': 'image/svg+xml',
};

const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

function resolveInside(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const full = path.resolve(root, '.' + path.posix.normalize('/' + decoded));
  return full === root || full.startsWith(root + path.sep) ? full : null;
}

async function handle(root, req, res, log) {
  const send = (status, text) => {
    res.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : text + '\n');
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
  const urlPath = new URL(req.url, 'http://localhost').pathname;
  let file = resolveInside(root, urlPath);
  if (!file) return send(403, 'forbidden');
  let info;
  try {
    info = await stat(file);
    if (info.isDirectory()) {
      file = path.join(file, 'index.html');
      info = await stat(file);
    }
  } catch {
    if (log) console.error(`[server] 404 ${urlPath}`);
    return send(404, 'not found');
  }
  if (!info.isFile()) return send(404, 'not found');
  res.writeHead(200, {
    ...ISOLATION_HEADERS,
    'Content-Type': MIME_TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream',
    'Content-Length': info.size,
  });
  if (req.method === 'HEAD') return res.end();
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

export async function startServer({ root, port = 0, host = '127.0.0.1', log = false } = {}) {
  if (!root) throw new Error('startServer: `root` is required');
  const absRoot = path.resolve(root);
  const server = createServer((req, res) => {
    handle(absRoot, req, res, log).catch((err) => {
      if (!res.headersSent) res.writeHead(500, ISOLATION_HEADERS);
      res.end();
      if (log) console.error(`[server] ${req.url}: ${err}`);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.address().port;
  return {
    url: `http://${host}:${actualPort}`,
    port: actualPort,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] || process.cwd();
  const server = await startServer({ root, port: Number(process.argv[3] || 8080), log: true });
  console.log(`serving ${path.resolve(root)} at ${server.url} (cross-origin isolated)`);
}
