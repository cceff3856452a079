// Witness instances that share a key file may start at the same moment with no key yet: all of them
// must end up with the one key that was written, none with an error or a key of its own.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity, readPublicKey } from '../../src/crypto/key-file.js';
import { tempDir } from '../helpers/cli.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('loadOrCreateIdentity under a start-up race', () => {
  it('gives every concurrent caller the key that was written', async () => {
    const file = path.join(dir, 'witness.key');
    const ids = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(file, 'witness')));
    const stored = (await readPublicKey(file, dir)).publicKey;
    for (const id of ids) expect(Buffer.from(id.publicKey)).toEqual(Buffer.from(stored));
  });
});
