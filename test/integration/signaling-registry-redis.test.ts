import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { RedisRegistry } from '../../src/services/signaling/redis-registry.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { describeRegistryContract } from './signaling-registry-contract.js';

let redis: TestRedis;
const clients: Redis[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis.cleanup();
});

// Each test gets its own key prefix on the one real redis-server, so no test sees another's state.
describeRegistryContract('redis', async () => {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  clients.push(client);
  return new RedisRegistry(client, `test-${randomUUID()}:`);
});
