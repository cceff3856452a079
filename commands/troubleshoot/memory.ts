import { troubleshootCommand } from './tree.js';

export default troubleshootCommand(
  'memory',
  [{ name: '[agent]' }],
  'memory growth and connection leaks (troubleshoot-memory.sh)',
  ['ifmesh troubleshoot memory'],
);
