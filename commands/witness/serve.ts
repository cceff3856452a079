import { defineCommand } from '../../src/cli/define.js';
import type { ServeFlags } from './serve-options.js';

export default defineCommand<ServeFlags>({
  path: 'witness serve',
  summary: 'run the IF.witness audit service (SQLite, or PostgreSQL with --db postgres://…) until SIGTERM',
  examples: ['IF_WITNESS_API_KEY=secret ifmesh witness serve --port 8080'],
  flags: [
    { flags: '--host <addr>', description: 'address to listen on', default: '127.0.0.1' },
    { flags: '--port <n>', description: 'port to listen on', default: '8080' },
    'state-dir',
    {
      flags: '--db <file|url>',
      description:
        'SQLite file, or postgres://USER@HOST:PORT/DB (default $WITNESS_DB_URL, else <state-dir>/witness.db)',
    },
    {
      flags: '--key <file>',
      description: "the witness's Ed25519 checkpoint key; created if absent (default <db dir>/witness.key)",
    },
    {
      flags: '--retention-days <n>',
      description: 'the shortest retention a cleanup may apply: newer events are never deleted',
      default: '30',
    },
    {
      flags: '--checkpoint-every <n>',
      description: 'sign a checkpoint after this many events',
      default: '1000',
    },
    {
      flags: '--checkpoint-interval <duration>',
      description: '… or this often when the log grew',
      default: '10s',
    },
    'config',
    'set',
    'json',
  ],
  async run({ flags, ctx, io, out }) {
    const [{ witnessServeOptions }, { serveWitness }] = await Promise.all([
      import('./serve-options.js'),
      import('../../src/ops/witness/serve.js'),
    ]);
    const options = await witnessServeOptions(flags, ctx, out, () => io.claimSignal());
    await serveWitness(options, (info) => {
      if (flags.json) ctx.stdout.write(`${JSON.stringify(info)}\n`);
      else ctx.stderr.write(`if-witness listening on ${info.url} (db ${info.db}, origin ${info.origin})\n`);
    });
  },
});
