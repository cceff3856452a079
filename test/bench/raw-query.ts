// Baseline for the witness query benchmark: the same indexed SELECT on the same database, served
// by a bare node:http server (body parsed as JSON, rows joined into the same response shape), so
// the ratio is ifmesh's query engine and checks, not HTTP. Prints its URL as one JSON line.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';

const db = new Database(process.argv[2]!, { readonly: true });
const stmt = db.prepare(
  'SELECT body FROM events WHERE event = ? AND agent_id = ? AND ts_ms >= ? ORDER BY ts_ms, id LIMIT 1001',
);
const server = createServer((req, res) => {
  let text = '';
  req.on('data', (d) => {
    text += d;
  });
  req.on('end', () => {
    const q = JSON.parse(text) as { query: { event: string; agent_id: string } };
    const rows = stmt.all(q.query.event, q.query.agent_id, Date.now() - 3_600_000) as { body: string }[];
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"results":[${rows.map((r) => r.body).join(',')}],"count":${rows.length}}`);
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
