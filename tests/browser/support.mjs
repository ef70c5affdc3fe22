// Helpers for the till page's browser test (pos.test.mjs): the buoni
// command, a real `buoni serve`, a fake camera stream made from a rendered
// card, a second web server for the cross-site post, the API as a shop sees
// it (Bearer key). Every wait is bounded.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// The buoni binary: $BUONI_BIN, else the usual build directory.
export function buoniBin() {
  if (process.env.BUONI_BIN) return process.env.BUONI_BIN;
  for (const candidate of ['build/tools/buoni', 'build/buoni']) {
    const p = path.join(repoRoot, candidate);
    if (fs.existsSync(p)) return p;
  }
  throw new Error('set BUONI_BIN to the built buoni binary (cmake --build build)');
}

// Runs a command; resolves {code, stdout, stderr}; rejects only on a timeout.
export function run(file, args, { timeoutMs = 30000, env } = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, env: { ...process.env, ...env }, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error && error.killed) return reject(new Error(`${file} ${args.join(' ')}: timed out`));
        resolve({ code: error ? error.code ?? 1 : 0, stdout, stderr });
      });
  });
}

// `buoni --data DIR --json ARGS...`, parsed; throws unless it exits 0.
export async function buoniJson(data, ...args) {
  const r = await run(buoniBin(), ['--data', data, '--json', ...args]);
  if (r.code !== 0) throw new Error(`buoni ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
}

export async function buoni(data, ...args) {
  const r = await run(buoniBin(), ['--data', data, ...args]);
  if (r.code !== 0) throw new Error(`buoni ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

// Starts `buoni serve` and resolves once it printed `listening on URL`.
export function startServer(data, listen = '127.0.0.1:0', { timeoutMs = 20000 } = {}) {
  const proc = spawn(buoniBin(), ['--data', data, 'serve', '--listen', listen], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`buoni serve did not start: ${stderr}`)); }, timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout.removeAllListeners('data');
      proc.stdout.resume();
      resolve({
        url: m[1].replace(/\/$/, ''),
        proc,
        stderr: () => stderr,
        // SIGTERM, then SIGKILL after the bound; resolves the exit.
        async stop(bound = 10000) {
          if (proc.exitCode !== null || proc.signalCode !== null) return exited;
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), bound);
          const r = await exited;
          clearTimeout(t);
          return r;
        },
      });
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`buoni serve exited ${code}: ${stderr}`)); });
  });
}

// A card's PNG as a fake camera stream: 640x480 4:2:0 frames, 10 a second for 1 s
// (Chromium loops the file), the card centred on white.
export async function cardVideo(png, y4m) {
  const r = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-loop', '1', '-i', png,
    '-vf', 'scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2:white',
    '-t', '1', '-r', '10', '-pix_fmt', 'yuv420p', y4m], { timeoutMs: 60000 });
  if (r.code !== 0) throw new Error(`ffmpeg: ${r.stderr}`);
}

// The API as the shop sees it with its key (not the page's cookie).
export function shopApi(url, key) {
  const call = async (method, p, body, headers = {}) => {
    const res = await fetch(url + p, {
      method,
      headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10000),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  };
  return {
    call,
    card: async (card) => (await call('GET', `/v1/cards/${encodeURIComponent(card)}`)).body,
    // Every entry of the shop, all pages.
    async transactions() {
      const all = [];
      let cursor = '';
      for (let i = 0; i < 100; i++) {
        const r = await call('GET', `/v1/transactions?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
        if (r.status !== 200) throw new Error(`GET /v1/transactions: ${r.status} ${JSON.stringify(r.body)}`);
        all.push(...r.body.transactions);
        cursor = r.body.next_cursor || '';
        if (!cursor) return all;
      }
      throw new Error('too many pages');
    },
  };
}

// "****-****-****-WXYZ-C": how the API shows a card number in lists.
export function masked(number) {
  const parts = number.split('-');
  return `****-****-****-${parts[3]}-${parts[4]}`;
}

// A plain web server on 127.0.0.1 answering every GET with `html`.
export function pageServer(html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(html);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: server.address().port,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  })));
}

// Today as YYYY-MM-DD in UTC plus `days`.
export function utcDay(days = 0) {
  return new Date(Date.now() + days * 86400000).toISOString().slice(0, 10);
}

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms); }),
  ]);
}
