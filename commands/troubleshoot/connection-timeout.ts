import { troubleshootCommand } from './tree.js';

export default troubleshootCommand(
  'connection-timeout',
  [{ name: '<agent>' }, { name: '<peer>' }],
  'why AGENT does not connect to PEER (tree 1; troubleshoot-connection-timeout.sh)',
  ['ifmesh troubleshoot connection-timeout agent-1 agent-2'],
);
