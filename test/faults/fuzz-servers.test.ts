// Fuzzed WebSocket frames and HTTP bodies against a real signaling process and a real witness
// process, bounded by count (fast-check, at least 2,000 generated inputs per target), with two
// legitimate in-process agents linked over a DataChannel the whole time. Afterwards, per target:
// the server process is alive and answers /health 200, it logged no internal error, no HTTP request
// was answered 5xx (the contract wants a 4xx with a clear error for bad input), no input went
// unanswered, its RSS stayed under a generous leak bound, and the agents are still registered, still
// on the same link, and still exchange a signed ping.
//
// Everything is on 127.0.0.1. Authorized requests are fuzzed too, except the few that would make the
// servers do real work to the legitimate agents (rotate their keys, push them TURN servers off
// loopback, block or rebind their ids): those are sent without the token (see `tame`), because an
// operator's real command is not a hostile input.
import path from 'node:path';

import fc from 'fast-check';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { MeshAgent } from '../../src/agent/agent.js';
import type { PeerLink } from '../../src/agent/peer-link.js';
import { parseIceUrl } from '../../src/config/ice-url.js';
import { createSigner, generateKeyPair, type KeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { METRICS_REPORT_FIELDS, registerChallenge } from '../../src/protocol/signaling.js';
import { tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { meshAgent } from '../helpers/mesh.js';
import { rssBytes, type Service, startSignalingProcess, startWitnessProcess } from '../helpers/processes.js';
import { ADMIN } from '../helpers/signaling.js';
import { API_KEY } from '../helpers/witness.js';
import { recordFigure } from './figures.js';

/** Generated inputs per target (counted, not timed). */
const WS_RUNS = 2_000;
const HTTP_RUNS = 2_000;
/** Inputs in flight at once: one per socket of the WebSocket pool, and HTTP requests per batch. */
const WS_POOL = 8;
const HTTP_PARALLEL = 4;
/** Bounds a failing exchange, never a passing one (a slow machine waits longer, it is not failed sooner). */
const IO_TIMEOUT_MS = 15_000;
/** Leak guard, not a benchmark: RSS after a target may be at most 3 × RSS before it, plus 50 MB. */
const rssBound = (before: number) => 3 * before + 50 * 1024 * 1024;
/** A fuzz socket is closed by us after this many inputs, so its session stays below the 200-frame burst. */
const INPUTS_PER_SESSION = 12;

const LEGIT = ['legit-fz-a', 'legit-fz-b'] as const;
const FUZZ_IDS = Array.from({ length: 12 }, (_, i) => `fz-${i}`);
const FUZZ_KEYS: KeyPair[] = Array.from({ length: 4 }, () => generateKeyPair());
const OWN_KEYS = new Map<string, KeyPair>();
function ownKey(id: string): KeyPair {
  const k = OWN_KEYS.get(id) ?? generateKeyPair();
  OWN_KEYS.set(id, k);
  return k;
}

const { dir, cleanup } = tempDir();
let turn: RunningTurnserver | undefined;
let witness: Service | undefined;
let signaling: Service | undefined;
let agents: MeshAgent[] = [];
/** The link each legitimate agent had to the other once the mesh formed: it must be the one still in use. */
let links: PeerLink[] = [];
const errorLines = new Map<Service, string[]>();

/**
 * Counts the error-level JSON log lines a service writes (its internal failures) as they come, but
 * those matching `expected` (see below).
 */
function watchErrors(svc: Service, expected?: RegExp): void {
  const lines: string[] = [];
  errorLines.set(svc, lines);
  let partial = '';
  svc.child.stderr!.on('data', (d: Buffer) => {
    const text = partial + d.toString();
    const all = text.split('\n');
    partial = all.pop() ?? '';
    for (const l of all) if (l.includes('"level":"error"') && !expected?.test(l)) lines.push(l.slice(0, 600));
  });
}

const sigHttp = () => String(signaling!.ready.http_url);

beforeAll(async () => {
  turn = await startCoturn();
  witness = await startWitnessProcess(path.join(dir, 'witness.db'));
  // The witness answers a query it cannot finish within its budget 503 query_timeout, and logs it
  // as an error: load shedding by design (docs/witness.md), not a failure on bad input. Such
  // answers are counted apart from the 5xx below; on a quiet machine there are none.
  watchErrors(witness, /query took longer than/);
  signaling = await startSignalingProcess([], {
    SIGNALING_ADMIN_TOKEN: ADMIN,
    IF_WITNESS_ENDPOINT: witness.url,
    IF_WITNESS_API_KEY: API_KEY,
  });
  watchErrors(signaling);
  agents = LEGIT.map((id) => meshAgent(id, [signaling!.url], turn!.stunUrl));
  await Promise.all([
    agents[0]!.waitForPeers([LEGIT[1]], 30_000),
    agents[1]!.waitForPeers([LEGIT[0]], 30_000),
  ]);
  links = [agents[0]!.links.get(LEGIT[1])!, agents[1]!.links.get(LEGIT[0])!];
}, 90_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await signaling?.stop();
  await witness?.stop();
  await turn?.stop();
  cleanup();
}, 60_000);

// ---------------------------------------------------------------------------------------------
// Values. Hostile pieces that are expensive to carry around (3,000 levels of nesting, a megabyte of
// text, literals JSON.stringify cannot write) are generated as short markers and expanded into the
// text at send time, so fast-check's values stay small.

const MARK = '\u0000';
const raw = (lit: string) => `${MARK}RAW:${lit}`;
const PROTO_TEMPLATES = [
  '{"toString":1}',
  '{"valueOf":{},"toString":{}}',
  '{"__proto__":{"type":"register","admin":true}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '{"toJSON":1}',
  '{"then":1}',
  '{"length":1e999}',
  '{"hasOwnProperty":0}',
  '{"__proto__":null}',
];
const RAW_LITERALS = [
  '1e999',
  '-1e999',
  '1e-999',
  '-0',
  '123456789012345678901234567890',
  '9007199254740993',
  '1E+2',
  // Not JSON at all, inside an otherwise well-formed frame.
  'NaN',
  'Infinity',
  'undefined',
  "'x'",
  '0x10',
  '.5',
  '01',
];

/** The text a marker stands for; undefined for one a mutation garbled (it is then sent as it is). */
function expand(kind: string, arg: string): string | undefined {
  if (kind === 'RAW') return arg;
  if (kind === 'PROTO') return PROTO_TEMPLATES[Number(arg)];
  let m = /^([aom]):(\d{1,4})$/.exec(arg);
  if (kind === 'DEEP' && m && Number(m[2]) <= 3_000) {
    const n = Number(m[2]);
    if (m[1] === 'a') return '['.repeat(n) + ']'.repeat(n);
    if (m[1] === 'o') return `${'{"x":'.repeat(n)}0${'}'.repeat(n)}`;
    return `${'[{"y":'.repeat(n)}1${'}]'.repeat(n)}`;
  }
  m = /^(\d{1,7}):(\d{1,7})$/.exec(arg);
  if ((kind === 'HUGE' || kind === 'REP') && m && Number(m[1]) <= 1_000_000 && Number(m[2]) <= 0x10ffff) {
    const text = String.fromCodePoint(Number(m[2])).repeat(Number(m[1]));
    return kind === 'HUGE' ? JSON.stringify(text) : text;
  }
  // BATCH: an array of n tiny events (the witness takes at most 1,000 per request).
  const n = Number(arg);
  if (kind !== 'BATCH' || !/^\d{1,4}$/.test(arg) || n > 1_010) return undefined;
  return `[${Array.from({ length: n }, (_, i) => `{"event":"fz_batch","metadata":{"i":${i}}}`).join(',')}]`;
}

/**
 * JSON text of `v` with its markers still folded: what fast-check shows in a counterexample and the
 * reports quote. `unfold` makes the text that is sent.
 */
function render(v: unknown): string {
  return JSON.stringify(v) ?? 'null';
}

/** A marker as it appears in rendered text. */
const folded = (marker: string) => JSON.stringify(marker);

function unfold(text: string): string {
  return text.replace(
    /"\\u0000(RAW|PROTO|DEEP|HUGE|REP|BATCH):([^"\\]*)"/g,
    (whole, k, a) => expand(k, a) ?? whole,
  );
}

/** An object's text from its entries: keeps duplicate keys and keys such as "__proto__" as given. */
function renderEntries(entries: [string, unknown][]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${render(v)}`).join(',')}}`;
}

/** Frames and bodies stay within 1 MB. */
function clip(text: string): string {
  const t = text.length > 1_000_000 ? text.slice(0, 1_000_000) : text;
  return Buffer.byteLength(t) > 1_040_000 ? t.slice(0, 330_000) : t;
}

const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });
const protoKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'toJSON',
  'then',
);
const deep = fc
  .record({ shape: fc.constantFrom('a', 'o', 'm'), n: fc.integer({ min: 2, max: 3_000 }) })
  .map(({ shape, n }) => `${MARK}DEEP:${shape}:${n}`);
const huge = (max: number) =>
  fc
    .record({
      n: fc.integer({ min: 1_000, max }),
      cp: fc.constantFrom(0x61, 0x22, 0x5c, 0xe9, 0x2028, 0x1f600, 0x20, 0x3c),
    })
    .map(({ n, cp }) => `${MARK}HUGE:${cp > 0xffff ? Math.floor(n / 4) : n}:${cp}`);
const oddScalar = fc.constantFrom<unknown>(
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 53,
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\ufeff',
  '../../etc/passwd',
  '<script>',
  [],
  {},
  [null],
);
/** A value of the wrong kind for whatever field it lands in. */
const weird: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: json, weight: 5 },
  { arbitrary: oddScalar, weight: 3 },
  { arbitrary: fc.constantFrom(...RAW_LITERALS).map(raw), weight: 2 },
  { arbitrary: fc.nat({ max: PROTO_TEMPLATES.length - 1 }).map((i) => `${MARK}PROTO:${i}`), weight: 2 },
  { arbitrary: deep, weight: 1 },
  { arbitrary: huge(70_000), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 64 }), weight: 2 },
);
const agentIdLike = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
const b64url = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => toBase64url(b));
const printable = (max: number) => fc.string({ unit: 'grapheme-ascii', maxLength: max });
/** Text that is almost a JSON document: one cut, doubled or inserted somewhere. */
const mutatedText = (base: fc.Arbitrary<string>) =>
  fc
    .tuple(base, fc.nat(), fc.constantFrom('cut', 'dup', 'insert'), fc.string({ maxLength: 3 }))
    .map(([t, at, how, s]) => {
      const i = t.length ? at % t.length : 0;
      if (how === 'cut') return t.slice(0, i);
      if (how === 'dup') return t.slice(0, i) + t.slice(i - 1);
      return t.slice(0, i) + s + t.slice(i);
    });

const badPercent = fc.constantFrom(
  '%',
  '%E0%A4%A',
  '%FF',
  '%C0%80',
  '%%',
  '%zz',
  '%00',
  '%2F',
  '%ED%A0%80',
  '%uD800',
);
const pathSegment = fc.oneof(
  agentIdLike,
  fc.constantFrom(...FUZZ_IDS, ...LEGIT),
  badPercent,
  fc.webSegment(),
  fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)),
  fc.integer({ min: 100, max: 7_000 }).map((n) => 'a'.repeat(n)),
);

// ---------------------------------------------------------------------------------------------
// Signaling WebSocket inputs.

const STATES = ['new', 'connecting', 'connected', 'disconnected', 'failed', 'closed'];
const METRICS = METRICS_REPORT_FIELDS;
const FRAME_FIELDS: Record<string, string[]> = {
  register: ['agent_id', 'public_key', 'signature', 'metadata', 'rotation'],
  challenge: [],
  offer: ['to', 'sdp', 'session'],
  answer: ['to', 'sdp', 'session'],
  'ice-candidate': ['to', 'candidate'],
  bye: ['to'],
  'connection-state': ['peer_id', 'state', 'candidate_type', 'rtt_ms', 'loss_ratio'],
  'keys-rotated': ['rotation_id'],
  'metrics-report': [...METRICS],
  // Server-to-client types sent the wrong way, and names the contract does not have.
  hello: ['nonce', 'protocol'],
  registered: ['agent_id', 'peers'],
  'agent-joined': ['agent_id', 'public_key'],
  'agent-left': ['agent_id'],
  error: ['code', 'message'],
  'rotate-keys': ['rotation_id'],
  config: ['turn_servers', 'bandwidth'],
  reconnect: ['peers'],
  REGISTER: ['agent_id'],
  '': [],
};
const metadataKey = fc.stringMatching(/^[A-Za-z0-9._:-]{1,70}$/);
const metadata = fc.oneof(
  {
    arbitrary: fc.dictionary(
      fc.oneof(metadataKey, protoKey, fc.constant('mesh')),
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.constantFrom('default', 'fz-mesh', 'bad mesh!', ''),
      ),
      { maxKeys: 40 },
    ),
    weight: 4,
  },
  { arbitrary: weird, weight: 1 },
);
// Relays go to fuzz sockets or nobody, never to the legitimate agents (this is not an agent fuzz).
const relayTarget = fc.oneof(fc.constantFrom(...FUZZ_IDS, 'fz-nobody'), agentIdLike);
const PLAUSIBLE: Record<string, fc.Arbitrary<unknown>> = {
  to: relayTarget,
  peer_id: fc.oneof(fc.constantFrom(...FUZZ_IDS, ...LEGIT), agentIdLike),
  agent_id: fc.oneof(fc.constantFrom(...FUZZ_IDS, ...LEGIT), agentIdLike),
  sdp: fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.constant('v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n'),
  ),
  session: fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/),
  candidate: fc.record(
    { candidate: fc.string({ maxLength: 120 }), sdpMid: json, sdpMLineIndex: json },
    { requiredKeys: [] },
  ),
  state: fc.constantFrom(...STATES, 'CONNECTED', ''),
  candidate_type: fc.constantFrom('host', 'srflx', 'prflx', 'relay', null, 'HOST'),
  rtt_ms: fc.oneof(fc.double(), fc.integer()),
  loss_ratio: fc.double({ min: -1, max: 2 }),
  rotation_id: fc.string({ maxLength: 200 }),
  public_key: b64url(0, 40),
  signature: b64url(0, 70),
  metadata,
  rotation: fc.record({ previous_key: b64url(30, 34), signature: b64url(62, 66) }, { requiredKeys: [] }),
  nonce: b64url(32, 32),
  peers: fc.array(fc.record({ agent_id: agentIdLike, public_key: b64url(32, 32) }), { maxLength: 3 }),
  turn_servers: fc.array(fc.string({ maxLength: 30 }), { maxLength: 3 }),
  ...Object.fromEntries(METRICS.map((m) => [m, fc.oneof(fc.nat(), fc.double(), fc.constant(raw('1e999')))])),
};
const fieldValue = (name: string) =>
  fc.oneof({ arbitrary: PLAUSIBLE[name] ?? json, weight: 3 }, { arbitrary: weird, weight: 2 });

/** A frame of a contract type, its fields plausible or of the wrong kind, some missing, some extra. */
const frameText: fc.Arbitrary<string> = fc.constantFrom(...Object.keys(FRAME_FIELDS)).chain((type) =>
  fc
    .record({
      type: fc.oneof({ arbitrary: fc.constant<unknown>(type), weight: 8 }, { arbitrary: weird, weight: 1 }),
      fields: fc.array(fc.constantFrom(...FRAME_FIELDS[type]!, 'type', 'x'), {
        maxLength: FRAME_FIELDS[type]!.length + 1,
      }),
      values: fc.tuple(...[...FRAME_FIELDS[type]!, 'type', 'x'].map(fieldValue)),
      extra: fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 10 }), protoKey), weird), { maxLength: 2 }),
      omit: fc.boolean(),
    })
    .map(({ type: t, fields, values, extra, omit }) => {
      const names = [...FRAME_FIELDS[type]!, 'type', 'x'];
      // Usually every field, each once; sometimes a random selection (missing ones, duplicates).
      const chosen = omit ? fields : [...FRAME_FIELDS[type]!, ...fields.slice(0, 1)];
      const entries: [string, unknown][] = [['type', t]];
      for (const n of chosen) entries.push([n, values[names.indexOf(n)]]);
      return renderEntries([...entries, ...extra]);
    }),
);

type RegisterSig = 'good' | 'wrong-nonce' | 'wrong-id' | 'random' | 'short' | 'long' | 'not-b64' | 'empty';
type RegisterKey = 'good' | 'short' | 'long' | 'not-b64' | 'other';
type WsAction =
  | { k: 'text'; text: string }
  | { k: 'binary'; bytes: Uint8Array }
  | { k: 'badutf8'; bytes: Uint8Array }
  | { k: 'fragment'; text: string }
  | { k: 'ping'; bytes: Uint8Array }
  | {
      k: 'register';
      id: unknown;
      key: number;
      sig: RegisterSig;
      pub: RegisterKey;
      metadata: unknown;
      rotation: unknown;
      challenge: boolean;
    }
  | { k: 'flood'; n: number; text: string }
  | { k: 'close'; code: number; reason: string }
  | { k: 'terminate' }
  | { k: 'upgrade'; path: string; headers: Record<string, string>; protocols: string[] };

const registerAction: fc.Arbitrary<WsAction> = fc.record({
  k: fc.constant('register' as const),
  id: fc.oneof(
    { arbitrary: fc.constantFrom<unknown>(...FUZZ_IDS), weight: 6 },
    // Squatting: a legitimate agent's id under another key must be refused, the agent left alone.
    { arbitrary: fc.constantFrom<unknown>(...LEGIT), weight: 1 },
    { arbitrary: agentIdLike as fc.Arbitrary<unknown>, weight: 2 },
    { arbitrary: weird, weight: 1 },
  ),
  // -1: the id's own key (so that most registrations of an id agree with its first-use binding).
  key: fc.oneof(
    { arbitrary: fc.constant(-1), weight: 6 },
    { arbitrary: fc.nat({ max: FUZZ_KEYS.length }), weight: 3 },
  ),
  sig: fc.constantFrom<RegisterSig>(
    'good',
    'good',
    'good',
    'good',
    'good',
    'good',
    'good',
    'wrong-nonce',
    'wrong-id',
    'random',
    'short',
    'long',
    'not-b64',
    'empty',
  ),
  pub: fc.constantFrom<RegisterKey>(
    'good',
    'good',
    'good',
    'good',
    'good',
    'good',
    'short',
    'long',
    'not-b64',
    'other',
  ),
  metadata: fc.oneof({ arbitrary: fc.constant(undefined), weight: 2 }, { arbitrary: metadata, weight: 3 }),
  rotation: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 8 },
    { arbitrary: PLAUSIBLE.rotation!, weight: 1 },
    { arbitrary: weird, weight: 1 },
  ),
  challenge: fc.boolean(),
});

/** A registration that should succeed: a fuzz id, its own key, a fresh nonce, sane or no metadata. */
const goodRegister: fc.Arbitrary<WsAction> = fc.record({
  k: fc.constant('register' as const),
  id: fc.constantFrom<unknown>(...FUZZ_IDS),
  key: fc.constant(-1),
  sig: fc.constant<RegisterSig>('good'),
  pub: fc.constant<RegisterKey>('good'),
  metadata: fc.option(
    fc.dictionary(fc.stringMatching(/^[a-z]{1,10}$/), fc.string({ maxLength: 20 }), { maxKeys: 4 }),
    {
      nil: undefined,
    },
  ),
  rotation: fc.constant(undefined),
  challenge: fc.boolean(),
});
/** A WebSocket upgrade of its own: a path other than /, odd Origin and forwarding headers. */
const upgradeAction: fc.Arbitrary<WsAction> = fc.record({
  k: fc.constant('upgrade' as const),
  path: fc.oneof(
    fc.constantFrom('/', '//', '/?x=1', '/#', '/%', '/%E0%A4%A', '/..', '/./', '///x', '/health'),
    pathSegment.map((p) => `/${p}`),
    fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
  ),
  headers: fc.dictionary(fc.constantFrom('origin', 'x-forwarded-for', 'user-agent', 'host'), printable(60), {
    maxKeys: 3,
  }),
  protocols: fc.array(fc.oneof(fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/), printable(10)), {
    maxLength: 2,
  }),
});

const wsAction: fc.Arbitrary<WsAction> = fc.oneof(
  { arbitrary: upgradeAction, weight: 2 },
  {
    arbitrary: fc
      .oneof(
        printable(200),
        fc.string({ unit: 'binary', maxLength: 200 }),
        mutatedText(frameText),
        json.map((j) => render(j)),
      )
      .map((text) => ({ k: 'text' as const, text })),
    weight: 9,
  },
  { arbitrary: frameText.map((text) => ({ k: 'text' as const, text })), weight: 24 },
  {
    arbitrary: fc
      .oneof(huge(1_000_000), deep)
      .map((m) => ({ k: 'text' as const, text: render({ type: 'offer', to: 'fz-0', sdp: m }) })),
    weight: 2,
  },
  { arbitrary: registerAction, weight: 15 },
  {
    arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ k: 'binary' as const, bytes })),
    weight: 2,
  },
  {
    arbitrary: fc
      .tuple(
        fc.string({ maxLength: 20 }),
        fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82]),
      )
      .map(([s, bad]) => ({
        k: 'badutf8' as const,
        bytes: Buffer.concat([Buffer.from(s), Buffer.from(bad)]),
      })),
    weight: 2,
  },
  {
    arbitrary: fc.oneof(printable(30), frameText).map((text) => ({ k: 'fragment' as const, text })),
    weight: 2,
  },
  { arbitrary: fc.uint8Array({ maxLength: 125 }).map((bytes) => ({ k: 'ping' as const, bytes })), weight: 1 },
  {
    arbitrary: fc.record({
      k: fc.constant('flood' as const),
      n: fc.integer({ min: 250, max: 720 }),
      text: fc.constantFrom(
        '{"type":"metrics-report","memory_bytes":1}',
        '{"type":"offer","to":"fz-nobody","sdp":"x"}',
        '{"type":"challenge"}',
      ),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('close' as const),
      code: fc.constantFrom(1000, 3000, 4000, 4400, 4999),
      reason: printable(30),
    }),
    weight: 1,
  },
  { arbitrary: fc.constant({ k: 'terminate' as const }), weight: 1 },
);
const wsInput = fc.oneof(
  { arbitrary: fc.array(wsAction, { minLength: 1, maxLength: 4 }), weight: 3 },
  // Frames after a registration that worked.
  {
    arbitrary: fc
      .tuple(goodRegister, fc.array(wsAction, { minLength: 1, maxLength: 3 }))
      .map(([r, rest]) => [r, ...rest]),
    weight: 2,
  },
);

/** What the server would answer with a hello: a whole text frame that parses to {"type":"challenge",…}. */
function isChallenge(text: string): boolean {
  if (Buffer.byteLength(text) > 64 * 1024) return false;
  try {
    const v = JSON.parse(text) as { type?: unknown };
    return !!v && typeof v === 'object' && !Array.isArray(v) && v.type === 'challenge';
  } catch {
    return false;
  }
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timeout: ${what}`)), IO_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(t));
}

interface WsTally {
  inputs: number;
  frames: number;
  answered: number;
  closedByServer: Map<number, number>;
  closedByUs: number;
  rateLimited: number;
  errorCodes: Map<string, number>;
  registered: number;
  /** Inputs with no answer (no reply to the probe, no close) within IO_TIMEOUT_MS. */
  unanswered: string[];
  /** Server frames that were not one JSON object. */
  garbage: number;
  /** Answers to the extra upgrade requests, by status. */
  upgrades: Map<string, number>;
}

const bump = <K>(m: Map<K, number>, k: K) => m.set(k, (m.get(k) ?? 0) + 1);

/** One of the pool's sockets: reopened when the server closed it or after INPUTS_PER_SESSION inputs. */
class FuzzSocket {
  ws: WebSocket | undefined;
  nonce = '';
  hellos = 0;
  challenges = 0;
  closed: number | undefined;
  rateLimited = false;
  inputs = 0;
  fragment = '';
  retire = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly url: string,
    private readonly tally: WsTally,
  ) {}

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private until(cond: () => boolean, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => {
        const check = () => (cond() ? resolve() : this.waiters.push(check));
        this.waiters.push(check);
      }),
      what,
    );
  }

  private get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && this.closed === undefined;
  }

  async ensure(): Promise<void> {
    if (this.open && !this.retire && this.inputs < INPUTS_PER_SESSION) return;
    await this.close();
    const ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: IO_TIMEOUT_MS });
    this.ws = ws;
    this.hellos = 0;
    this.challenges = 1; // the hello every socket gets on open
    this.closed = undefined;
    this.rateLimited = false;
    this.inputs = 0;
    this.fragment = '';
    this.retire = false;
    // Events of a socket this slot has already replaced are ignored.
    ws.on('message', (d, isBinary) => {
      if (this.ws !== ws) return;
      let f: { type?: unknown; nonce?: unknown; code?: unknown } | undefined;
      try {
        f = isBinary ? undefined : JSON.parse(d.toString());
      } catch {}
      if (!f || typeof f !== 'object') this.tally.garbage += 1;
      else if (f.type === 'hello') {
        this.hellos += 1;
        this.nonce = String(f.nonce);
      } else if (f.type === 'error') {
        bump(this.tally.errorCodes, String(f.code));
        if (f.code === 'rate_limited') this.rateLimited = true;
      } else if (f.type === 'registered') this.tally.registered += 1;
      this.notify();
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.closed = code;
      this.notify();
    });
    ws.on('error', () => {});
    await this.until(() => this.hellos >= 1 || this.closed !== undefined, 'open and hello');
  }

  async close(): Promise<void> {
    const ws = this.ws;
    if (!ws || this.closed !== undefined) return;
    ws.close(1000);
    await this.until(() => this.closed !== undefined, 'our close').catch(() => ws.terminate());
  }

  private send(data: string | Buffer, opts: { binary?: boolean; fin?: boolean } = {}): Promise<void> {
    const ws = this.ws!;
    this.tally.frames += 1;
    const fin = opts.fin ?? true;
    if (typeof data === 'string' && !opts.binary) {
      // A message is whole when its last fragment goes: count the hello it will bring, if any.
      if (!fin) this.fragment += data;
      else {
        if (isChallenge(this.fragment + data)) this.challenges += 1;
        this.fragment = '';
      }
    } else if (fin) this.fragment = '';
    return withTimeout(
      new Promise<void>((resolve) => ws.send(data, { binary: opts.binary ?? false, fin }, () => resolve())),
      'send',
    );
  }

  private registerFrame(a: Extract<WsAction, { k: 'register' }>): string {
    const id = typeof a.id === 'string' ? a.id : render(a.id);
    const keys = a.key < 0 ? ownKey(id) : (FUZZ_KEYS[a.key] ?? generateKeyPair());
    const signer = createSigner(keys.seed);
    const sig: Record<RegisterSig, () => string> = {
      good: () => toBase64url(signer.sign(registerChallenge(this.nonce, id))),
      'wrong-nonce': () => toBase64url(signer.sign(registerChallenge(`${this.nonce}x`, id))),
      'wrong-id': () => toBase64url(signer.sign(registerChallenge(this.nonce, `${id}x`))),
      random: () => toBase64url(generateKeyPair().seed) + toBase64url(generateKeyPair().seed),
      short: () => toBase64url(signer.sign(registerChallenge(this.nonce, id)).slice(0, 63)),
      long: () =>
        toBase64url(Buffer.concat([signer.sign(registerChallenge(this.nonce, id)), Buffer.from([0])])),
      'not-b64': () => `${toBase64url(signer.sign(registerChallenge(this.nonce, id))).slice(1)}+`,
      empty: () => '',
    };
    const pub: Record<RegisterKey, () => string> = {
      good: () => toBase64url(keys.publicKey),
      short: () => toBase64url(keys.publicKey.slice(0, 31)),
      long: () => toBase64url(Buffer.concat([keys.publicKey, Buffer.from([1])])),
      'not-b64': () => `${toBase64url(keys.publicKey).slice(1)}/`,
      other: () => toBase64url(generateKeyPair().publicKey),
    };
    const entries: [string, unknown][] = [
      ['type', 'register'],
      ['agent_id', a.id],
      ['public_key', pub[a.pub]()],
      ['signature', sig[a.sig]()],
    ];
    if (a.metadata !== undefined) entries.push(['metadata', a.metadata]);
    if (a.rotation !== undefined) entries.push(['rotation', a.rotation]);
    return unfold(renderEntries(entries));
  }

  private async act(a: WsAction): Promise<void> {
    const ws = this.ws!;
    switch (a.k) {
      case 'text':
        return this.send(clip(unfold(a.text)));
      case 'binary':
        return this.send(Buffer.from(a.bytes), { binary: true });
      case 'badutf8':
        return this.send(Buffer.from(a.bytes), { binary: false });
      case 'fragment':
        return this.send(unfold(a.text), { fin: false });
      case 'ping':
        ws.ping(Buffer.from(a.bytes));
        return;
      case 'register':
        if (a.challenge) {
          await this.send('{"type":"challenge"}');
          await this.settled();
        }
        if (!this.open) return;
        return this.send(this.registerFrame(a));
      case 'flood': {
        this.retire = true;
        for (let i = 0; i < a.n - 1 && this.open; i++) this.send(a.text).catch(() => {});
        if (this.open) await this.send(a.text);
        return;
      }
      case 'close':
        this.retire = true;
        ws.close(a.code, a.reason);
        return;
      case 'terminate':
        this.retire = true;
        ws.terminate();
        return;
      case 'upgrade':
        return this.upgrade(a);
    }
  }

  /** Every hello the frames sent so far ask for has come (or the socket closed, or frames were dropped). */
  private settled(): Promise<void> {
    return this.until(
      () => this.closed !== undefined || this.hellos >= this.challenges || this.rateLimited,
      'hello',
    );
  }

  /** An upgrade request of its own, dropped as soon as the server has answered it. */
  private async upgrade(a: Extract<WsAction, { k: 'upgrade' }>): Promise<void> {
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${this.url}${a.path}`, a.protocols, {
        headers: a.headers,
        perMessageDeflate: false,
        handshakeTimeout: IO_TIMEOUT_MS,
      });
    } catch {
      bump(this.tally.upgrades, 'not sent (refused by the client)');
      return;
    }
    const outcome = await withTimeout(
      new Promise<string>((resolve) => {
        ws.once('open', () => resolve('101'));
        ws.once('unexpected-response', (req, res) => {
          resolve(String(res.statusCode));
          req.destroy();
        });
        ws.on('error', (e) => resolve(`error: ${e.message}`));
      }),
      'upgrade',
    ).finally(() => ws.terminate());
    if (outcome.startsWith('error')) throw new Error(`upgrade ${JSON.stringify(a.path)}: ${outcome}`);
    bump(this.tally.upgrades, outcome);
  }

  /**
   * Runs one input, then a challenge as a probe: the input is answered when its hello comes back or
   * the socket closes. Returns whether the server may have gone away (no answer, or a close without
   * a close frame that we did not cause).
   */
  async run(input: WsAction[]): Promise<boolean> {
    this.tally.inputs += 1;
    try {
      await this.ensure();
      this.inputs += 1;
      const closedByUs = () => input.some((a) => a.k === 'close' || a.k === 'terminate');
      for (const a of input) {
        if (!this.open) break;
        await this.act(a);
      }
      if (this.open && this.ws!.readyState === WebSocket.OPEN) await this.send('{"type":"challenge"}');
      await this.settled();
      if (this.closed !== undefined) {
        if (closedByUs()) this.tally.closedByUs += 1;
        else bump(this.tally.closedByServer, this.closed);
        return this.closed === 1006 && !closedByUs();
      }
      if (this.rateLimited) this.tally.rateLimited += 1;
      else this.tally.answered += 1;
      return false;
    } catch (err) {
      const shown = input.map((a) =>
        JSON.stringify(a, (_k, v) =>
          typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…(${v.length})` : v,
        ),
      );
      this.tally.unanswered.push(`${(err as Error).message}: ${shown.join(' | ').slice(0, 600)}`);
      this.retire = true;
      this.ws?.terminate();
      return true;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP inputs.

interface HttpSpec {
  method: string;
  path: string;
  query: string;
  contentType: string | null;
  auth: string | null;
  body: string | Uint8Array | undefined;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];
const pathFor = (base: string) =>
  fc.oneof(
    { arbitrary: fc.constant(base), weight: 8 },
    { arbitrary: pathSegment.map((s) => `${base}/${s}`), weight: 2 },
    { arbitrary: pathSegment.map((s) => `${base}${s}`), weight: 1 },
    { arbitrary: fc.constant(`${base}/`), weight: 1 },
    { arbitrary: fc.constant(`/${base}`), weight: 1 },
    { arbitrary: fc.constant(base.toUpperCase()), weight: 1 },
    { arbitrary: badPercent.map((p) => `${base}${p}`), weight: 1 },
    { arbitrary: fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)), weight: 2 },
  );
const queryFor = (names: string[]) =>
  fc.oneof(
    { arbitrary: fc.constant(''), weight: 5 },
    {
      arbitrary: fc
        .array(
          fc.tuple(
            fc.oneof(fc.constantFrom(...names, 'format', 'x'), fc.string({ maxLength: 8 })),
            fc.oneof(
              fc.integer({ min: -5, max: 50 }).map(String),
              fc.constantFrom(
                '999999999999999',
                '9999999999999999',
                '1e3',
                '1.5',
                '-1',
                '',
                'json',
                ...LEGIT,
              ),
              fc.string({ maxLength: 20 }),
              badPercent,
            ),
          ),
          { maxLength: 4 },
        )
        .map((ps) =>
          ps
            .map(([k, v]) => `${encodeURIComponent(k)}=${v.startsWith('%') ? v : encodeURIComponent(v)}`)
            .join('&'),
        ),
      weight: 3,
    },
    { arbitrary: fc.webQueryParameters(), weight: 1 },
  );
const contentType = fc.oneof(
  { arbitrary: fc.constant<string | null>(null), weight: 3 },
  {
    arbitrary: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-16',
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      '*/*',
    ),
    weight: 4,
  },
  { arbitrary: printable(60), weight: 1 },
);
const authFor = (good: string) =>
  fc.oneof(
    { arbitrary: fc.constant<string | null>(null), weight: 4 },
    { arbitrary: fc.constant(`Bearer ${good}`), weight: 4 },
    {
      arbitrary: fc.constantFrom(
        'Bearer wrong-token',
        `bearer ${good}`,
        `Bearer  ${good} `,
        `Bearer ${good}x`,
        `Basic ${Buffer.from(`admin:${good}`).toString('base64')}`,
        'Bearer',
        'Bearer ',
        `Bearer ${'x'.repeat(8_000)}`,
      ),
      weight: 2,
    },
    { arbitrary: printable(80), weight: 1 },
  );
/** A body: none, route-aware fields of the right and wrong kinds, or anything else up to 1 MB. */
const bodyFor = (typed: fc.Arbitrary<string>, hugeMax: number) =>
  fc.oneof(
    { arbitrary: fc.constant<string | Uint8Array | undefined>(undefined), weight: 2 },
    { arbitrary: fc.constant(''), weight: 1 },
    { arbitrary: typed, weight: 10 },
    { arbitrary: mutatedText(typed), weight: 2 },
    { arbitrary: weird.map(render), weight: 2 },
    { arbitrary: fc.oneof(printable(300), fc.string({ unit: 'binary', maxLength: 300 })), weight: 2 },
    { arbitrary: fc.uint8Array({ maxLength: 300 }), weight: 1 },
    {
      arbitrary: fc
        .tuple(fc.integer({ min: 60_000, max: hugeMax }), fc.boolean())
        .map(([n, asJson]) =>
          asJson ? `{"x":${folded(`${MARK}HUGE:${n}:121`)}}` : folded(`${MARK}REP:${n}:122`),
        ),
      weight: 1,
    },
  );
/** An object body from (field, value) pairs: each field once, in order, some left out. */
const typedObject = (fields: Record<string, fc.Arbitrary<unknown>>) =>
  fc
    .tuple(
      fc.record(fields, { requiredKeys: [] }),
      fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 10 }), protoKey), weird), { maxLength: 2 }),
    )
    .map(([rec, extra]) => renderEntries([...Object.entries(rec), ...extra]));
const orWeird = (a: fc.Arbitrary<unknown>) =>
  fc.oneof({ arbitrary: a, weight: 3 }, { arbitrary: weird, weight: 1 });

interface Route {
  method: string;
  path: string;
  query: string[];
  body: fc.Arbitrary<string>;
}

const turnUrl = fc.oneof(
  fc.constantFrom(
    'turn:127.0.0.1:3478',
    'turns:127.0.0.1:5349?transport=tcp',
    'turn:127.0.0.1:0',
    'stun:127.0.0.1',
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ maxLength: 20 }).map((s) => `turn:${s}`),
);
const SIGNALING_ROUTES: Route[] = [
  ...['/health', '/agents', '/connections', '/stats', '/metrics', '/config'].map((p) => ({
    method: 'GET',
    path: p,
    query: [],
    body: json.map(render),
  })),
  { method: 'GET', path: '/peers', query: [], body: json.map(render) },
  {
    method: 'POST',
    path: '/config/bandwidth',
    query: [],
    body: typedObject({
      enableBandwidthAdaptation: orWeird(fc.boolean()),
      maxBitrateMbps: orWeird(fc.oneof(fc.double(), fc.integer(), fc.constant(raw('1e999')))),
    }),
  },
  {
    method: 'POST',
    path: '/admin/rotate-keys',
    query: [],
    body: typedObject({
      rotation_reason: orWeird(fc.string()),
      incident_id: orWeird(fc.string()),
      force_immediate: orWeird(fc.boolean()),
    }),
  },
  { method: 'GET', path: '/admin/key-rotation-status', query: [], body: json.map(render) },
  {
    method: 'POST',
    path: '/admin/reload-config',
    query: [],
    body: typedObject({ turn_servers: orWeird(fc.array(turnUrl, { maxLength: 18 })) }),
  },
  { method: 'POST', path: '/admin/reconnect-turn-peers', query: [], body: json.map(render) },
  {
    method: 'POST',
    path: '/admin/reconnect-peers',
    query: [],
    body: typedObject({
      peers: orWeird(
        fc.dictionary(agentIdLike, fc.oneof(fc.array(agentIdLike, { maxLength: 3 }), weird), { maxKeys: 3 }),
      ),
    }),
  },
  {
    method: 'POST',
    path: '/admin/block',
    query: [],
    body: typedObject({
      agent_id: orWeird(fc.oneof(agentIdLike, fc.constantFrom(...FUZZ_IDS))),
      reason: orWeird(fc.string()),
    }),
  },
  {
    method: 'DELETE',
    path: '/admin/block',
    query: ['agent_id'],
    body: typedObject({ agent_id: orWeird(agentIdLike) }),
  },
  {
    method: 'POST',
    path: '/admin/unblock',
    query: [],
    body: typedObject({ agent_id: orWeird(fc.constantFrom(...FUZZ_IDS)) }),
  },
  {
    method: 'POST',
    path: '/admin/agents/rebind',
    query: [],
    body: typedObject({
      agent_id: orWeird(fc.oneof(agentIdLike, fc.constantFrom(...FUZZ_IDS))),
      public_key: orWeird(b64url(30, 34)),
      reason: orWeird(fc.string()),
    }),
  },
  { method: 'GET', path: '/admin/agents/bindings', query: [], body: json.map(render) },
  { method: 'GET', path: '/admin/blocks', query: [], body: json.map(render) },
];

const hostileRegex = fc.oneof(
  fc.constantFrom(
    '(a+)+$',
    '(a|a)*b',
    '(a*)*b',
    '(.*a){20}',
    '^(([a-z])+.)+[A-Z]([a-z])+$',
    '\\1',
    '(?=a)',
    '(?<=a)b',
    '(?!x)',
    '[',
    '(',
    ')',
    '\\',
    '[z-a]',
    'a{1000}',
    'a{1001}',
    '(a{1000}){1000}',
    '((((((((((a))))))))))*',
    '\\p{Greek}+',
    '\\pZ',
    '\\x{110000}',
    '(?P<n>a)',
    '(?i)CONNECTION',
    '\\Qa.b\\E',
    '.*'.repeat(100),
    '.{1000}'.repeat(36),
    '[^\\x00-\\x7f]+',
    'x'.repeat(257),
    '',
  ),
  fc.stringMatching(/^[()|*+?.a[\]{}0-9,\\^$-]{0,260}$/),
  fc.string({ maxLength: 300 }),
);
const timeValue = fc.oneof(
  fc.constantFrom<unknown>(
    'now',
    '-30s',
    '-5m',
    '-1h',
    '-7d',
    '-999999999w',
    '-0s',
    '+5m',
    '-5M',
    '-1y',
    '2026-11-22T21:44:37Z',
    '2026-11-22',
    '2026-11-22 21:44',
    '0000-01-01',
    '275760-09-13',
    '2026-02-30',
    '9999-12-31T23:59:59.999999999+23:59',
  ),
  fc.double(),
  fc.integer(),
  weird,
);
const queryKey = fc.oneof(
  fc.constantFrom(
    'event',
    'agent_id',
    'severity',
    'timestamp',
    'metadata.state',
    'metadata.roundTripTime',
    'metadata.a.b.c.d.e.f.g',
    'metadata.a.b.c.d.e.f.g.h.i',
    '',
    '.',
    'metadata.',
  ),
  fc.stringMatching(/^[A-Za-z0-9_.-]{1,80}$/),
  fc.string({ maxLength: 20 }),
  protoKey,
);
const queryValue = fc.oneof(
  {
    arbitrary: fc.oneof(fc.string({ maxLength: 30 }), fc.integer(), fc.boolean(), fc.constant(null)),
    weight: 3,
  },
  { arbitrary: hostileRegex.map((r) => ({ regex: r })), weight: 4 },
  { arbitrary: hostileRegex.map((r) => ({ $regex: r })), weight: 1 },
  {
    arbitrary: fc
      .tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte', '$ne', '$in', '$nin', '$where', 'regex'), weird)
      .map(([op, v]) => ({ [op]: v })),
    weight: 3,
  },
  { arbitrary: fc.array(json, { maxLength: 120 }).map((v) => ({ $in: v })), weight: 1 },
  { arbitrary: weird, weight: 2 },
);
const cursor = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc
    .tuple(
      fc.oneof(fc.integer(), fc.constant(-999999999999999)),
      fc.oneof(fc.nat(), fc.constant(999999999999999)),
    )
    .map(([t, id]) => Buffer.from(`${t}:${id}`).toString('base64url')),
  weird,
);
const witnessEvent = fc
  .tuple(
    fc.record(
      {
        event: orWeird(
          fc.oneof(
            fc.constantFrom('connection_state_changed', 'fz_probe', 'signature_verification_failed'),
            fc.stringMatching(/^[A-Za-z0-9_.:-]{1,130}$/),
          ),
        ),
        timestamp: orWeird(
          fc.oneof(
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            fc.constantFrom(
              '2026-02-30T00:00Z',
              '0000-01-01T00:00:00Z',
              '9999-12-31T23:59:59.999999999+23:59',
              '2026-01-01T00:00:00.123456789-00:00',
              '2026-13-01T00:00Z',
              '+275760-09-13T00:00:00Z',
              '2026-11-22T21:44:37',
            ),
          ),
        ),
        idempotency_key: orWeird(fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), fc.string({ maxLength: 210 }))),
        agent_id: orWeird(agentIdLike),
        peer_id: orWeird(agentIdLike),
        trace_id: orWeird(fc.uuid()),
        incident_id: weird,
        severity: orWeird(fc.constantFrom('info', 'warning', 'critical')),
        metadata: orWeird(fc.dictionary(fc.string({ maxLength: 12 }), json, { maxKeys: 6 })),
        id: weird,
      },
      { requiredKeys: [] },
    ),
    fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 10 }), protoKey), weird), { maxLength: 2 }),
  )
  .map(([rec, extra]) => renderEntries([...Object.entries(rec), ...extra]));
const logBody = fc.oneof(
  { arbitrary: witnessEvent, weight: 5 },
  { arbitrary: fc.array(witnessEvent, { maxLength: 12 }).map((evs) => `[${evs.join(',')}]`), weight: 2 },
  { arbitrary: fc.integer({ min: 990, max: 1_010 }).map((n) => render(`${MARK}BATCH:${n}`)), weight: 1 },
);
const queryBody = typedObject({
  query: orWeird(
    fc.array(fc.tuple(queryKey, queryValue), { maxLength: 34 }).map((kvs) => Object.fromEntries(kvs)),
  ),
  time_range: orWeird(
    fc
      .tuple(
        fc.record({ from: timeValue, to: timeValue }, { requiredKeys: [] }),
        fc.option(fc.string({ maxLength: 8 })),
      )
      .map(([tr, extra]) => (extra === null ? tr : { ...tr, [extra]: 1 })),
  ),
  limit: orWeird(
    fc.oneof(
      fc.integer({ min: -5, max: 20_000 }),
      fc.constantFrom<unknown>(0, 1, 10_000, 10_001, 1e9, 1.5, '10', null, raw('1e999')),
    ),
  ),
  cursor,
  x: weird,
});
const WITNESS_ROUTES: Route[] = [
  { method: 'GET', path: '/health', query: [], body: json.map(render) },
  { method: 'POST', path: '/api/log', query: [], body: logBody },
  { method: 'POST', path: '/api/events', query: [], body: logBody },
  { method: 'POST', path: '/api/query', query: [], body: queryBody },
  { method: 'POST', path: '/api/query', query: [], body: queryBody },
  {
    method: 'POST',
    path: '/api/admin/cleanup',
    query: [],
    body: typedObject({
      retain_days: orWeird(
        fc.oneof(
          fc.integer({ min: -10, max: 40_000 }),
          fc.constantFrom<unknown>(0, 1, 29, 30, 31, 36_500, 36_501, 1.5, '30'),
        ),
      ),
    }),
  },
  { method: 'GET', path: '/api/checkpoint', query: ['format'], body: json.map(render) },
  { method: 'GET', path: '/api/key', query: [], body: json.map(render) },
  { method: 'GET', path: '/api/proof/inclusion', query: ['id', 'tree_size'], body: json.map(render) },
  { method: 'GET', path: '/api/proof/consistency', query: ['from', 'to'], body: json.map(render) },
  { method: 'GET', path: '/api/leaves', query: ['start', 'end'], body: json.map(render) },
  { method: 'GET', path: '/metrics', query: [], body: json.map(render) },
];

const httpSpec = (routes: Route[], token: string, hugeMax: number): fc.Arbitrary<HttpSpec> =>
  fc.constantFrom(...routes).chain((r) =>
    fc.record({
      method: fc.oneof(
        { arbitrary: fc.constant(r.method), weight: 6 },
        { arbitrary: fc.constantFrom(...METHODS), weight: 1 },
      ),
      path: r.path === '/peers' ? pathSegment.map((s) => `/peers/${s}`) : pathFor(r.path),
      query: queryFor(r.query),
      contentType,
      auth: authFor(token),
      body: bodyFor(r.body, hugeMax),
    }),
  );

/** Requests sent at once (each answered on its own connection of the pool). */
const httpBatch = (routes: Route[], token: string) =>
  fc.array(httpSpec(routes, token, 1_000_000), { minLength: HTTP_PARALLEL, maxLength: HTTP_PARALLEL });

/**
 * Authorized requests that would act on the legitimate agents go without the token: a rotation
 * (any object body starts one), TURN servers pushed to them (they would reach for hosts off
 * loopback), and anything naming their ids (block, rebind, reconnect).
 */
function tame(s: HttpSpec): HttpSpec {
  if (!s.auth || s.body instanceof Uint8Array) return s;
  const text = `${s.path}?${s.query} ${s.body ?? ''}`;
  const p = s.path.replace(/\/+$/, '');
  let parsed: unknown;
  try {
    parsed = s.body ? JSON.parse(s.body) : {};
  } catch {}
  const object = !!parsed && typeof parsed === 'object' && !Array.isArray(parsed);
  const turns = object ? (parsed as { turn_servers?: unknown }).turn_servers : undefined;
  const pushesTurn =
    Array.isArray(turns) &&
    turns.some((u) => typeof u === 'string' && typeof parseIceUrl(u, ['turn', 'turns']) !== 'string');
  if (
    LEGIT.some((id) => text.includes(id)) ||
    (p.endsWith('/admin/rotate-keys') && object) ||
    (p.endsWith('/admin/reload-config') && pushesTurn)
  )
    return { ...s, auth: null };
  return s;
}

interface HttpTally {
  requests: number;
  byClass: Map<string, number>;
  fiveXx: string[];
  /** Requests with no answer (transport error or IO_TIMEOUT_MS). */
  failed: string[];
  tamed: number;
}

function describeSpec(s: HttpSpec): string {
  const body =
    s.body === undefined
      ? '-'
      : s.body instanceof Uint8Array
        ? `<${s.body.length} bytes>`
        : s.body.slice(0, 300);
  return `${s.method} ${s.path.slice(0, 200)}${s.query ? `?${s.query.slice(0, 200)}` : ''} ct=${JSON.stringify(s.contentType)} auth=${s.auth ? JSON.stringify(s.auth.slice(0, 40)) : '-'} body(${s.body === undefined ? 0 : s.body.length})=${body}`;
}

/** Sends one request; false when it got no answer at all. */
async function sendHttp(base: string, s: HttpSpec, dispatcher: Agent, tally: HttpTally): Promise<boolean> {
  tally.requests += 1;
  const headers: Record<string, string> = {};
  if (s.contentType !== null) headers['content-type'] = s.contentType;
  if (s.auth !== null) headers.authorization = s.auth;
  const withBody = s.method !== 'GET' && s.method !== 'HEAD';
  try {
    const res = await fetch(`${base}${s.path}${s.query ? `?${s.query}` : ''}`, {
      method: s.method,
      headers,
      body: withBody && typeof s.body === 'string' ? clip(unfold(s.body)) : withBody ? s.body : undefined,
      signal: AbortSignal.timeout(IO_TIMEOUT_MS),
      dispatcher,
    });
    const text = await res.text();
    if (res.status === 503 && text.includes('"code":"query_timeout"')) {
      bump(tally.byClass, '503 query_timeout');
      return true;
    }
    bump(tally.byClass, `${Math.floor(res.status / 100)}xx`);
    if (res.status >= 500) tally.fiveXx.push(`${res.status} ${text.slice(0, 300)} ← ${describeSpec(s)}`);
    return true;
  } catch (err) {
    const e = err as Error & { cause?: Error };
    tally.failed.push(`${e.message}${e.cause ? ` (${e.cause.message})` : ''} ← ${describeSpec(s)}`);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The checks after each target.

const MB = (n: number) => `${Math.round(n / 1e6)} MB`;

/**
 * After an input that got no answer: waits until the server either exits or answers /health, so
 * that a crash is blamed on the input that caused it rather than on a later one.
 */
async function settleLife(svc: Service, healthUrl: string): Promise<void> {
  await Promise.race([svc.exited, status(healthUrl)]);
}

/** What a process that died wrote last besides its JSON log lines (Node's uncaught error and stack). */
function lastWords(svc: Service): string {
  return svc
    .stderr()
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('{'))
    .slice(-12)
    .filter((l) => /Error|^\s+at /.test(l))
    .slice(0, 3)
    .map((l) => l.trim())
    .join(' / ');
}

/**
 * A target whose server an earlier target already killed is not run: its row says so, and the
 * test fails on it (the crash itself is reported by the target that caused it).
 */
function requireAlive(svc: Service, fault: string): void {
  if (alive(svc)) return;
  recordFigure({
    fault,
    trials: 0,
    expected: 'no crash, 0 × 5xx, every request answered, RSS bounded, agents unaffected',
    observed: `not run: the process had already exited (${lastWords(svc)})`.slice(0, 300),
    figure: 'not run',
    ok: false,
  });
  throw new Error(`${fault}: not run, the process exited during an earlier target: ${lastWords(svc)}`);
}

function alive(svc: Service): boolean {
  if (svc.child.exitCode !== null || svc.child.signalCode !== null) return false;
  try {
    process.kill(svc.pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(IO_TIMEOUT_MS) });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

/** The legitimate agents: registered with their own keys, on the links they had, answering pings. */
async function agentsUnaffected(): Promise<string[]> {
  const problems: string[] = [];
  try {
    const res = await fetch(`${sigHttp()}/agents`, { signal: AbortSignal.timeout(IO_TIMEOUT_MS) });
    const listed = ((await res.json()) as { agents: { agent_id: string; public_key: string }[] }).agents;
    for (const a of agents) {
      const entry = listed.find((l) => l.agent_id === a.id);
      if (!entry) problems.push(`${a.id} is not in /agents`);
      else if (entry.public_key !== toBase64url(a.publicKey))
        problems.push(`${a.id} is listed under another key`);
    }
  } catch (err) {
    problems.push(`GET /agents failed: ${(err as Error).message}`);
  }
  for (const [i, a] of agents.entries()) {
    const peer = LEGIT[1 - i]!;
    const link = a.links.get(peer);
    if (link !== links[i]) problems.push(`${a.id}'s link to ${peer} was replaced or dropped`);
    try {
      if (!link) continue;
      const rtt = await link.ping(IO_TIMEOUT_MS);
      if (!Number.isFinite(rtt)) problems.push(`${a.id} → ${peer}: ping gave ${rtt}`);
    } catch (err) {
      problems.push(`${a.id} → ${peer}: ${(err as Error).message}`);
    }
  }
  return problems;
}

interface After {
  problems: string[];
  rss: string;
  errors: string[];
  agents: string;
}

/**
 * Liveness, health, internal errors and RSS of `svc` after a target, and the agents (unless
 * signaling had already exited before the target began: then they are not this target's to judge).
 */
async function check(
  svc: Service,
  healthUrl: string,
  rssBefore: number,
  errorsBefore: number,
  signalingUpBefore = true,
): Promise<After> {
  const problems: string[] = [];
  // Not synchronisation: a pause lets the server finish what it was doing and its collector run
  // before RSS is read. Nothing below depends on how long it takes.
  await new Promise((r) => setTimeout(r, 1_000));
  const up = alive(svc);
  if (!up)
    problems.push(
      `process ${svc.pid} exited (${svc.child.exitCode ?? svc.child.signalCode}): ${lastWords(svc)}`,
    );
  const health = up ? await status(healthUrl) : 0;
  if (health !== 200) problems.push(`GET /health answered ${health || 'nothing'}`);
  let after = 0;
  if (up) {
    after = rssBytes(svc.pid);
    if (after >= rssBound(rssBefore))
      problems.push(`RSS grew from ${MB(rssBefore)} to ${MB(after)} (bound ${MB(rssBound(rssBefore))})`);
  }
  let agentsNote = 'agents still linked';
  if (signaling && alive(signaling)) problems.push(...(await agentsUnaffected()));
  else if (signalingUpBefore) problems.push('signaling exited: the agents lost their registration');
  else agentsNote = 'agents not checked (signaling exited in an earlier target)';
  const errors = errorLines.get(svc)!.slice(errorsBefore);
  if (errors.length) problems.push(`${errors.length} internal error(s) logged, first: ${errors[0]}`);
  return { problems, rss: `RSS ${MB(rssBefore)} → ${MB(after)}`, errors, agents: agentsNote };
}

/** A failed row's `observed`: what went wrong, shortened for the table. */
function failure(problems: string[], thrown: unknown): string {
  const text = problems.length ? problems.join('; ') : `failed: ${String(thrown).split('\n')[0]}`;
  return text.slice(0, 300);
}

function report(label: string, lines: string[]): void {
  if (lines.length)
    process.stderr.write(`${label} (${lines.length}):\n  ${lines.slice(0, 8).join('\n  ')}\n`);
}

// ---------------------------------------------------------------------------------------------

describe('fuzzed frames and bodies against the signaling and witness processes (fast-check, by count)', () => {
  it(`signaling survives ${WS_RUNS.toLocaleString('en')} fuzzed WebSocket inputs; the agents do not notice`, async () => {
    const sig = signaling!;
    const rssBefore = rssBytes(sig.pid);
    const errorsBefore = errorLines.get(sig)!.length;
    const tally: WsTally = {
      inputs: 0,
      frames: 0,
      answered: 0,
      closedByServer: new Map(),
      closedByUs: 0,
      rateLimited: 0,
      errorCodes: new Map(),
      registered: 0,
      unanswered: [],
      garbage: 0,
      upgrades: new Map(),
    };
    const pool = Array.from({ length: WS_POOL }, () => new FuzzSocket(sig.url, tally));
    let thrown: unknown;
    try {
      await fc.assert(
        // One input per pool socket at a time, all sockets at once.
        fc.asyncProperty(fc.array(wsInput, { minLength: WS_POOL, maxLength: WS_POOL }), async (batch) => {
          const suspicious = await Promise.all(batch.map((input, i) => pool[i]!.run(input)));
          // A dead server ends the run at the batch that killed it (no shrinking against a corpse).
          if (suspicious.some(Boolean)) await settleLife(sig, `${sigHttp()}/health`);
          return alive(sig);
        }),
        { numRuns: Math.ceil(WS_RUNS / WS_POOL), endOnFailure: true },
      );
    } catch (e) {
      thrown = e;
    } finally {
      await Promise.all(pool.map((s) => s.close().catch(() => {})));
    }
    const after = await check(sig, `${sigHttp()}/health`, rssBefore, errorsBefore);
    if (tally.unanswered.length)
      after.problems.push(`${tally.unanswered.length} input(s) unanswered, first: ${tally.unanswered[0]}`);
    if (tally.garbage) after.problems.push(`${tally.garbage} server frame(s) that are not a JSON object`);
    const closes = [...tally.closedByServer].sort((a, b) => b[1] - a[1]).map(([c, k]) => `${c}×${k}`);
    process.stderr.write(
      `ws fuzz: ${tally.inputs} inputs, ${tally.frames} frames; answered ${tally.answered}, closed by server ${closes.join(' ')}, by us ${tally.closedByUs}, rate-limited ${tally.rateLimited}, registered ${tally.registered}; upgrades ${[...tally.upgrades].map(([k, v]) => `${k}×${v}`).join(' ')}; ${after.rss}\n`,
    );
    report('unanswered inputs', tally.unanswered);
    report('signaling internal errors', after.errors);
    const ok = !thrown && after.problems.length === 0 && tally.inputs >= WS_RUNS;
    recordFigure({
      fault: 'fuzzed WebSocket frames against signaling',
      trials: tally.inputs,
      expected: 'no crash, 0 internal errors, every input answered, RSS bounded, agents unaffected',
      observed: ok
        ? `alive, 0 internal errors, every input answered (${closes.join(' ')} closes), ${after.rss}, ${after.agents}`
        : failure(after.problems, thrown),
      figure: `${alive(sig) ? 0 : 1} crashes`,
      ok,
    });
    expect(after.problems).toEqual([]);
    if (thrown) throw thrown;
    expect(tally.inputs).toBeGreaterThanOrEqual(WS_RUNS);
  }, 180_000);

  it(`signaling answers ${HTTP_RUNS.toLocaleString('en')} fuzzed HTTP requests without a 5xx`, async () => {
    const sig = signaling!;
    requireAlive(sig, 'fuzzed HTTP requests against signaling');
    const rssBefore = rssBytes(sig.pid);
    const errorsBefore = errorLines.get(sig)!.length;
    const tally: HttpTally = { requests: 0, byClass: new Map(), fiveXx: [], failed: [], tamed: 0 };
    const dispatcher = new Agent({ connections: HTTP_PARALLEL });
    let thrown: unknown;
    try {
      await fc.assert(
        fc.asyncProperty(httpBatch(SIGNALING_ROUTES, ADMIN), async (batch) => {
          const sent = await Promise.all(
            batch.map((spec) => {
              const s = tame(spec);
              if (s !== spec) tally.tamed += 1;
              return sendHttp(sigHttp(), s, dispatcher, tally);
            }),
          );
          if (!sent.every(Boolean)) await settleLife(sig, `${sigHttp()}/health`);
          return alive(sig);
        }),
        { numRuns: Math.ceil(HTTP_RUNS / HTTP_PARALLEL), endOnFailure: true },
      );
    } catch (e) {
      thrown = e;
    } finally {
      await dispatcher.close();
    }
    await httpVerdict('signaling', sig, `${sigHttp()}/health`, rssBefore, errorsBefore, tally, thrown);
  }, 180_000);

  it(`the witness answers ${HTTP_RUNS.toLocaleString('en')} fuzzed HTTP requests without a 5xx`, async () => {
    const w = witness!;
    requireAlive(w, 'fuzzed HTTP requests against the witness');
    const sigUp = !!signaling && alive(signaling);
    const rssBefore = rssBytes(w.pid);
    const errorsBefore = errorLines.get(w)!.length;
    const tally: HttpTally = { requests: 0, byClass: new Map(), fiveXx: [], failed: [], tamed: 0 };
    const dispatcher = new Agent({ connections: HTTP_PARALLEL });
    let thrown: unknown;
    try {
      await fc.assert(
        fc.asyncProperty(httpBatch(WITNESS_ROUTES, API_KEY), async (batch) => {
          const sent = await Promise.all(batch.map((spec) => sendHttp(w.url, spec, dispatcher, tally)));
          if (!sent.every(Boolean)) await settleLife(w, `${w.url}/health`);
          return alive(w);
        }),
        { numRuns: Math.ceil(HTTP_RUNS / HTTP_PARALLEL), endOnFailure: true },
      );
    } catch (e) {
      thrown = e;
    } finally {
      await dispatcher.close();
    }
    await httpVerdict('the witness', w, `${w.url}/health`, rssBefore, errorsBefore, tally, thrown, sigUp);
  }, 180_000);
});

async function httpVerdict(
  name: string,
  svc: Service,
  healthUrl: string,
  rssBefore: number,
  errorsBefore: number,
  tally: HttpTally,
  thrown: unknown,
  signalingUpBefore = true,
): Promise<void> {
  const after = await check(svc, healthUrl, rssBefore, errorsBefore, signalingUpBefore);
  if (tally.fiveXx.length) after.problems.push(`${tally.fiveXx.length} × 5xx, first: ${tally.fiveXx[0]}`);
  if (tally.failed.length)
    after.problems.push(`${tally.failed.length} request(s) unanswered, first: ${tally.failed[0]}`);
  const classes = [...tally.byClass].sort().map(([c, k]) => `${c} ${k}`);
  process.stderr.write(
    `http fuzz (${name}): ${tally.requests} requests (${tally.tamed} sent without their token); ${classes.join(', ')}; unanswered ${tally.failed.length}; ${after.rss}\n`,
  );
  report(`${name} 5xx answers`, tally.fiveXx);
  report(`${name} unanswered requests`, tally.failed);
  report(`${name} internal errors`, after.errors);
  const ok = !thrown && after.problems.length === 0 && tally.requests >= HTTP_RUNS;
  recordFigure({
    fault: `fuzzed HTTP requests against ${name}`,
    trials: tally.requests,
    expected: 'no crash, 0 × 5xx, every request answered, RSS bounded, agents unaffected',
    observed: ok
      ? `alive, 0 × 5xx (${classes.join(', ')}), ${after.rss}, ${after.agents}`
      : failure(after.problems, thrown),
    figure: `${tally.fiveXx.length} × 5xx`,
    ok,
  });
  expect(tally.fiveXx).toEqual([]);
  expect(after.problems).toEqual([]);
  if (thrown) throw thrown;
  expect(tally.requests).toBeGreaterThanOrEqual(HTTP_RUNS);
}
