import { troubleshootCommand } from './tree.js';

export default troubleshootCommand('latency', [{ name: '<agent>' }], "AGENT's latency (tree 2)", [
  'ifmesh troubleshoot latency agent-1 --limit rttP2pMs=200',
]);
