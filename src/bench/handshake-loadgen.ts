/**
 * Entry of the handshake-rate benchmark's load generator process (handshake-generator.ts), started by
 * handshake-phase.ts inside the generator's namespace: `node handshake-loadgen.js PLAN.json`. Prints one JSON line,
 * a LoadResult; exits 1 with a line on stderr when it could not run.
 */
import { readFileSync } from 'node:fs';
import { runLoad } from './handshake-generator';
import type { LoadPlan } from './handshake-plan';

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadPlan;
  process.stdout.write(JSON.stringify(await runLoad(plan)) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`handshake load generator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
