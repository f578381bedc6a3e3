#!/usr/bin/env node
// Runs the tap suite and ends with the plain "N passed, N failed, N skipped" line that CI reads.
// Under CI=true a skipped test is a failure: every prerequisite (root, /dev/net/tun, the nebula
// package, iperf3) is installed by .ci/run, so a skip there means a test silently did not run.
// Test files run in parallel (package.json "tap".jobs); each file's time is listed at the end, slowest first,
// so a file that starts to dominate the suite is seen.
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const tapBin = path.join(root, 'node_modules', '.bin', 'tap');
const args = ['--reporter=tap', ...process.argv.slice(2)];
const started = Date.now();
const child = spawn(tapBin, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });

let tail = '';
let partial = '';
/** Top-level results, one per test file: "ok 12 - test/e2e/flood.test.ts # time=20032.268ms". */
const fileTimes = [];
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const text = chunk.toString('utf8');
  tail = (tail + text).slice(-4096);
  const lines = (partial + text).split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) {
    const m = /^(not ok|ok) \d+ - (\S+) # time=([\d.]+)ms/.exec(line);
    if (m) fileTimes.push({ file: m[2], ms: Number(m[3]), ok: m[1] === 'ok' });
  }
});
child.on('close', (code, signal) => {
  // tap's tap reporter ends with a line such as: # { total: 7, pass: 4, fail: 1, todo: 1, skip: 1 }
  const m = /#\s*\{([^}]*)\}\s*$/m.exec(tail);
  const counts = { total: 0, pass: 0, fail: 0, skip: 0, todo: 0 };
  if (m) {
    for (const part of m[1].split(',')) {
      const [k, v] = part.split(':').map((s) => s.trim());
      if (k in counts) counts[k] = Number(v);
    }
  }
  let exitCode = code === null ? 1 : code;
  if (signal) exitCode = 1;
  if (!m) exitCode = exitCode || 1;
  if (process.env.CI === 'true' && counts.skip > 0) {
    console.error(`CI: ${counts.skip} test(s) were skipped; under CI every prerequisite must be present.`);
    exitCode = exitCode || 1;
  }
  if (fileTimes.length > 0) {
    const slowest = [...fileTimes].sort((a, b) => b.ms - a.ms).slice(0, 15);
    const sum = fileTimes.reduce((n, f) => n + f.ms, 0);
    process.stdout.write(`\n# ${fileTimes.length} test files in ${((Date.now() - started) / 1000).toFixed(0)} s (their times add up to ${(sum / 1000).toFixed(0)} s); slowest:\n`);
    for (const f of slowest) process.stdout.write(`#   ${(f.ms / 1000).toFixed(1).padStart(6)} s  ${f.file}${f.ok ? '' : '  (failed)'}\n`);
  }
  process.stdout.write(`\n${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped\n`);
  process.exit(exitCode);
});
