import { MemoryRegistry } from '../../src/services/signaling/registry.js';
import { describeRegistryContract } from './signaling-registry-contract.js';

describeRegistryContract('memory', async () => new MemoryRegistry());
