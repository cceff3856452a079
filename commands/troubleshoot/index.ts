import { mount } from '../../src/cli/mount.js';
import connectionTimeout from './connection-timeout.js';
import dtls from './dtls.js';
import latency from './latency.js';
import memory from './memory.js';
import packetLoss from './packet-loss.js';

export const { definitions, register } = mount([connectionTimeout, packetLoss, latency, dtls, memory]);
