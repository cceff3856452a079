// incident security on real evidence: werift agents on loopback, one of them signing its IFMessages
// with a key that is not the one it registered; the receiver logs each refusal to a real witness,
// and the incident walks tree 4 on what the witness holds.
import { afterEach, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import { run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { receiver as httpReceiver } from '../helpers/notify-receivers.js';
import { ADMIN, getJson, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, startWitness } from '../helpers/witness.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('incident security', () => {
  it('a real agent signing with a wrong key is blocked at signaling; failures from several peers escalate to P1 with key rotation', async () => {
    const turn = await startCoturn();
    cleanups.push(() => turn.stop());
    const sig = await startSignaling();
    cleanups.push(() => sig.stop());
    const witness = await startWitness();
    cleanups.push(() => witness.stop());
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const agent = (id: string) => {
      const events = new WitnessClient({ url: witness.url, apiKey: API_KEY, producer: id, spoolDir: dir });
      const a = new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [sig.url],
        iceServers: [{ urls: turn.stunUrl }],
        loopbackOnly: true,
        events,
      });
      cleanups.push(
        () => events.close(),
        () => a.stop(),
      );
      a.start();
      return a;
    };
    const [mallory, receiver, eve] = [agent('mallory'), agent('receiver'), agent('eve')];
    await Promise.all([
      mallory.waitForPeers(['receiver', 'eve'], 30_000),
      receiver.waitForPeers(['mallory', 'eve'], 30_000),
      eve.waitForPeers(['mallory', 'receiver'], 30_000),
    ]);
    // mallory signs with a key that is not the one it registered
    const stolen = createSigner(generateKeyPair().seed);
    const forge = (from: MeshAgent, id: string) =>
      from.links
        .get('receiver')!
        .dc!.send(
          JSON.stringify(
            signMessage(buildMessage({ from: id, to: 'receiver', type: 'ping' }, Date.now()), stolen),
          ),
        );
    const failures = async () =>
      (await post(`${witness.url}/api/query`, { query: { event: 'signature_verification_failed' } }, null))
        .json.results.length as number;
    const security = async (notifyEnv?: Record<string, string>) => {
      const r = await run(
        [
          'incident',
          'security',
          '--state-dir',
          dir,
          '--signaling',
          sig.http,
          '--witness',
          witness.url,
          '--json',
          ...(notifyEnv ? ['--notify'] : []),
        ],
        { cwd: dir, env: { IF_WITNESS_API_KEY: API_KEY, SIGNALING_ADMIN_TOKEN: ADMIN, ...notifyEnv } },
      );
      const rec = JSON.parse(r.stdout);
      await run(['incident', 'resolve', rec.id, '--state-dir', dir], { cwd: dir, env: notifyEnv ?? {} });
      return { rec, printed: r.stdout + r.stderr };
    };

    for (let i = 1; i <= 3; i++) forge(mallory, 'mallory');
    await waitFor(async () => (await failures()) === 3, 'the receiver to log three forgeries', {
      timeoutMs: 15_000,
    });
    const { rec: repeat } = await security();
    expect(repeat.impact.agents_connected).toBe(3);
    // Tree 4 of src/ops/troubleshoot/trees.ts, walked on the witness's evidence.
    expect(repeat.tree.path).toEqual([
      expect.objectContaining({ question: 'Event type?', answer: 'signature' }),
      expect.objectContaining({ evidence: { failures: 3, by_peer: { mallory: 3 } }, answer: 'one_peer' }),
    ]);
    expect(repeat.tree.root_cause.id).toBe('repeated_signature_failures_one_peer');
    // Blocked through the agents block API: signaling drops mallory and will not register it again.
    expect(repeat.actions).toContainEqual(
      expect.objectContaining({
        action: 'agent_blocked',
        ok: true,
        detail: expect.stringMatching(/^mallory blocked on 1 instance\(s\), 1 connection\(s\) closed/),
      }),
    );
    await waitFor(
      async () =>
        !(await getJson(`${sig.http}/agents`)).json.agents.some((a: any) => a.agent_id === 'mallory'),
      'mallory to be gone from signaling',
    );
    expect((await getJson(`${sig.http}/agents`)).json.agents.map((a: any) => a.agent_id).sort()).toEqual([
      'eve',
      'receiver',
    ]);
    expect(
      (
        await post(
          `${witness.url}/api/query`,
          { query: { event: 'incident_agent_blocked', incident_id: repeat.id } },
          null,
        )
      ).json.results,
    ).toHaveLength(1);

    forge(eve, 'eve');
    await waitFor(async () => (await failures()) === 4, 'the receiver to log eve too', { timeoutMs: 15_000 });
    // A security breach is a P1 from the start (the runbook's index): PagerDuty (a local receiver
    // standing for it) is paged once, critical, and the team channel gets the runbook's P1 post.
    const pd = await httpReceiver((_n, p) => (p.startsWith('/slack') ? 200 : 202));
    const slack = `${pd.base}/slack/T000/B000/secret-path`;
    const { rec: wide, printed } = await security({
      PAGERDUTY_EVENTS_URL: `${pd.base}/v2/enqueue`,
      PAGERDUTY_INTEGRATION_KEY: 'pd-routing-secret',
      SLACK_WEBHOOK_URL: slack,
    });
    const paged = pd.got.filter((g) => g.path === '/v2/enqueue');
    expect(paged.map((g) => [g.body.event_action, g.body.dedup_key, g.body.payload?.severity])).toEqual([
      ['trigger', wide.id, 'critical'],
      // resolved by the helper once the incident is looked at
      ['resolve', wide.id, undefined],
    ]);
    const team = pd.got.find((g) => g.path.startsWith('/slack'))!.body;
    expect(team.text).toBe('🚨 P1 INCIDENT: WebRTC Agent Mesh Security Breach');
    expect(team.attachments[0].fields).toContainEqual({ title: 'Incident ID', value: wide.id });
    expect(printed).not.toContain('pd-routing-secret');
    expect(printed).not.toContain('secret-path');
    expect(wide.tree.root_cause.id).toBe('signature_failures_across_peers');
    expect(wide.severity).toBe('P1');
    expect(wide.next_steps).toContain(`ifmesh rotate-keys --incident-id ${wide.id}`);
  }, 90_000);
});
