// Baseline for the signaling benchmarks: the least a ws relay can do. No crypto, no validation,
// no metrics: register by name, forward by `to`. Prints its URL as one JSON line.
import { type WebSocket, WebSocketServer } from 'ws';

const agents = new Map<string, WebSocket>();
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  clientTracking: false,
});
wss.on('connection', (ws) => {
  let me: string | undefined;
  ws.send(JSON.stringify({ type: 'hello', nonce: 'raw', protocol: 1 }));
  ws.on('message', (data) => {
    const f = JSON.parse(data.toString());
    if (f.type === 'register') {
      me = f.agent_id as string;
      agents.set(me, ws);
      ws.send(JSON.stringify({ type: 'registered', agent_id: me, peers: [] }));
      return;
    }
    const to = agents.get(f.to);
    if (to) {
      const { to: _to, ...rest } = f;
      to.send(JSON.stringify({ ...rest, from: me }));
    }
  });
  ws.on('close', () => {
    if (me && agents.get(me) === ws) agents.delete(me);
  });
});
wss.on('listening', () => {
  const a = wss.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ url: `ws://127.0.0.1:${a.port}`, pid: process.pid })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
