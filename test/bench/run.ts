// `npm run bench`: measures, prints a Markdown table, and rewrites README.md's performance table.
// Every figure sits beside a baseline measured in the same run, so the ratio survives a noisy machine.
import { benchAgent } from './agent.js';
import { benchCluster } from './cluster.js';
import { benchCrypto } from './crypto.js';
import { type Row, table, writeReadmeBlock } from './lib.js';
import { benchSignaling } from './signaling.js';
import { benchStartup } from './startup.js';
import { benchWitness } from './witness.js';

const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const write = !process.argv.includes('--no-write');
const suites: Record<string, () => Row[] | Promise<Row[]>> = {
  startup: benchStartup,
  crypto: benchCrypto,
  witness: benchWitness,
  signaling: benchSignaling,
  agent: benchAgent,
  cluster: benchCluster,
};

for (const [name, fn] of Object.entries(suites)) {
  if (only.length && !only.includes(name)) continue;
  process.stderr.write(`bench ${name}…\n`);
  const body = table(await fn());
  process.stdout.write(`\n### ${name}\n${body}\n`);
  if (write) writeReadmeBlock(name, body);
}
// werift leaves timers behind after its connections close; the runner is done.
process.exit(0);
