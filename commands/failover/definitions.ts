// failover's definitions: the guide's scenarios (A turn, B signaling, C partition, D cert, E keys), the
// classification and validate-failover-recovery.sh. The work is in src/ops/failover/run.ts.
import cert from './cert.js';
import keys from './keys.js';
import list from './list.js';
import partition from './partition.js';
import signaling from './signaling.js';
import turn from './turn.js';
import validate from './validate.js';

export const definitions = [turn, signaling, partition, cert, keys, list, validate];
