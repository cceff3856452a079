// `npm run bench`: measures, prints a Markdown table per suite, rewrites docs/performance.md's tables, and
// exits 1 naming every row that missed its target. Every figure sits beside a baseline doing the
// same work in the same run, so the ratio survives a noisy machine. Runs compiled (dist/test/bench/),
// as the ifmesh code it measures does.
import { benchAgent } from './agent.js';
import { benchCluster } from './cluster.js';
import { benchCrypto } from './crypto.js';
import { missedTargets, type Row, table, writeReadmeBlock } from './lib.js';
import { benchRelease } from './release.js';
import { benchSignaling } from './signaling.js';
import { benchStack } from './stack.js';
import { benchStartup } from './startup.js';
import { benchWitness } from './witness.js';
import { benchWitnessPg } from './witness-pg.js';

const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const write = !process.argv.includes('--no-write');
// One line per suite: its name (the README block `<!-- bench:NAME -->`) and the function measuring it.
const suites: Record<string, () => Row[] | Promise<Row[]>> = {
  startup: benchStartup,
  crypto: benchCrypto,
  witness: benchWitness,
  'witness-pg': benchWitnessPg,
  signaling: benchSignaling,
  agent: benchAgent,
  cluster: benchCluster,
  stack: benchStack,
  release: benchRelease,
};

const unknown = only.filter((name) => !(name in suites));
if (unknown.length > 0) {
  process.stderr.write(`bench: no suite ${unknown.join(', ')}; suites: ${Object.keys(suites).join(', ')}\n`);
  process.exit(2);
}
const missed: string[] = [];
for (const [name, fn] of Object.entries(suites)) {
  if (only.length && !only.includes(name)) continue;
  process.stderr.write(`bench ${name}…\n`);
  const rows = await fn();
  const body = table(rows);
  process.stdout.write(`\n### ${name}\n${body}\n`);
  if (write) writeReadmeBlock(name, body);
  missed.push(...missedTargets(name, rows));
}
if (missed.length > 0)
  process.stderr.write(`bench: ${missed.length} row(s) missed their target:\n  ${missed.join('\n  ')}\n`);
// werift leaves timers behind after its connections close; the runner is done.
process.exit(missed.length > 0 ? 1 : 0);
