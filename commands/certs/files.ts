import path from 'node:path';
import type { LoadedConfig } from '../../src/config/load.js';
import { UsageError } from '../../src/errors.js';

/** The certificate and key: the flags, else SIGNALING_TLS_CERT and SIGNALING_TLS_KEY. */
export function certFiles(
  flags: { cert?: string; key?: string },
  loaded: LoadedConfig,
  cwd: string,
  needKey: boolean,
): { cert: string; key: string | undefined } {
  const cert = flags.cert ? path.resolve(cwd, flags.cert) : loaded.config.signalingTlsCert;
  const key = flags.key ? path.resolve(cwd, flags.key) : loaded.config.signalingTlsKey;
  if (!cert) throw new UsageError('no certificate to check', 'pass --cert FILE, or set SIGNALING_TLS_CERT');
  if (needKey && !key)
    throw new UsageError(
      'no key to rotate with the certificate',
      'pass --key FILE, or set SIGNALING_TLS_KEY',
    );
  return { cert, key };
}
