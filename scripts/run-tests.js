#!/usr/bin/env node
// Runs the tap suite and ends with the plain "N passed, N failed, N skipped" line that CI reads.
// Under CI=true a skipped test is a failure: every prerequisite (root, /dev/net/tun, the nebula
// package, iperf3) is installed by .ci/run, so a skip there means a test silently did not run.
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const tapBin = path.join(root, 'node_modules', '.bin', 'tap');
const args = ['--reporter=tap', ...process.argv.slice(2)];
const child = spawn(tapBin, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });

let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString('utf8')).slice(-4096);
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
  process.stdout.write(`\n${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped\n`);
  process.exit(exitCode);
});
