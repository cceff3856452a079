import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/config/agent-config.js';
import { ConfigError } from '../../src/errors.js';
import { ROOT, run } from '../helpers/cli.js';

describe('agent config files', () => {
  it('reads config/agents/<id>.json with paths relative to the file', async () => {
    const c = await loadAgentConfig(
      path.join(ROOT, 'fixtures/agents/agent-1.json'),
      'fixtures/agents/agent-1.json',
    );
    expect(c).toMatchObject({
      agentId: 'agent-1',
      icePolicy: 'all',
      loopback: true,
      signaling: ['ws://127.0.0.1:8443', 'ws://127.0.0.1:8444'],
    });
    expect(c.keyFile).toBe(path.join(ROOT, 'fixtures/keys/agent-allowed.key'));
  });

  it('names the file and every bad field, and the CLI exits 2', async () => {
    const err = (await loadAgentConfig(
      path.join(ROOT, 'fixtures/agents/broken/bad-fields.json'),
      'bad-fields.json',
    ).catch((e) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues.map((i) => i.key)).toEqual(['colour', 'agent_id', 'signaling[0]', 'ice_policy']);
    expect(err.issues.every((i) => i.file === 'bad-fields.json')).toBe(true);
    const r = await run(['agent', 'run', '--config', 'fixtures/agents/broken/bad-fields.json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'error: fixtures/agents/broken/bad-fields.json: ice_policy: must be "all" or "relay"',
    );
  });
});
