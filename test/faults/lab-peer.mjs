// One werift mesh agent as a process inside a NAT-lab host (`ifmesh lab run hN -- node
// test/faults/lab-peer.mjs …`), driven by the network-fault scenarios (netem-lab.test.ts): it joins
// the lab's signaling, keeps its signed DataChannel to one peer, and speaks JSON lines.
//   stdout: {"registered":true}, {"link":true|false} on every change of its link to the peer,
//           {"sent":n} per sequenced message the channel took, {"send_failed":n,"error":…},
//           {"recv":n,"from":…,"ms":…} per verified sequenced message received (ms: from the sender's
//           clock at sending to this one's at receipt — one host's clock, two namespaces),
//           {"event":…} for each event the agent logs (partition detected, healed …),
//           {"counters":{…}} on request.
//   stdin:  {"send":N,"gapMs":G} sends N sequenced messages G ms apart; {"counters":true}.
// Every line carries "t" (ms since the epoch). SIGTERM stops the agent and exits.
// Plain JavaScript on the built agent (dist/, which the test run's global setup builds): a process
// of its own needs no TypeScript loader.
import { createInterface } from 'node:readline';
import { MeshAgent } from '../../dist/src/agent/agent.js';
import { loadOrCreateIdentity } from '../../dist/src/crypto/key-file.js';

/** @param {string} name */
function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) throw new Error(`lab-peer needs --${name}`);
  return v;
}
/** @param {Record<string, unknown>} o */
const out = (o) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);

const id = arg('id');
const peer = arg('peer');
const identity = await loadOrCreateIdentity(arg('key'), id);
const agent = new MeshAgent({
  agentId: id,
  identity,
  signalingUrls: [arg('signaling')],
  iceServers: [{ urls: arg('stun') }],
  iceAddresses: [arg('address')],
  heartbeatTimeoutMs: Number(arg('heartbeat')),
  healingBaseMs: 500,
  backoffMaxMs: 2_000,
  events: { log: (e) => out({ event: e.event, peer: e.peer_id ?? null }) },
  onMessage: (from, m) => {
    if (m.type !== 'seq') return;
    const p = /** @type {{ n: number; at: number }} */ (m.payload);
    out({ recv: p.n, from, ms: Date.now() - p.at });
  },
});
agent.start();

let registered = false;
let linked = false;
const watch = setInterval(() => {
  if (!registered && agent.signalingUrl) {
    registered = true;
    out({ registered: true });
  }
  const now = agent.links.get(peer)?.ready === true;
  if (now !== linked) {
    linked = now;
    out({ link: now });
  }
}, 20);

let next = 1;
let sending = Promise.resolve();
/** @param {number} count @param {number} gapMs */
const send = async (count, gapMs) => {
  for (let i = 0; i < count; i++) {
    try {
      await agent.send(peer, 'seq', { n: next, at: Date.now() });
      out({ sent: next });
      next += 1;
    } catch (err) {
      out({ send_failed: next, error: String(err) });
    }
    await new Promise((r) => setTimeout(r, gapMs));
  }
};

createInterface({ input: process.stdin }).on('line', (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return;
  }
  if (cmd.send) sending = sending.then(() => send(cmd.send, cmd.gapMs ?? 10));
  if (cmd.counters) out({ counters: agent.counters });
});

const stop = async () => {
  clearInterval(watch);
  await agent.stop();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
