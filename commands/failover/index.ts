import { mount } from '../../src/cli/mount.js';
import { CLASSIFICATION } from '../../src/ops/failover/classification.js';
import { renderClassification } from '../../src/ui/failover.js';
import { definitions } from './definitions.js';

export const { register } = mount(definitions, {
  description: 'Run a failover guide scenario on the local stack, then validate the recovery',
  helpAfter: () => `\n${renderClassification(CLASSIFICATION)}\n`,
});
export { definitions };
