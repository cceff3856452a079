// The signaling admin API's identity answers (docs/security.md "Identity"): POST /admin/agents/rebind and
// GET /admin/agents/bindings. Kept beside signaling-api.ts, with the same conventions (zod schemas,
// the server builds its answers with `satisfies`, the client parses them), until it folds them in.
import { z } from 'zod';

const b64urlKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/);

export const rotationProofSchema = z.object({
  previous_key: z.string(),
  public_key: z.string(),
  signature: z.string(),
});

export const keyBindingSchema = z.object({
  agent_id: z.string(),
  public_key: z.string(),
  key_id: z.string(),
  bound_at: z.string(),
  via: z.enum(['first_use', 'allow_list', 'rotation', 'rebind']),
  rotations: z.array(rotationProofSchema).optional(),
});
export type KeyBindingInfo = z.infer<typeof keyBindingSchema>;

export const revocationSchema = z.object({
  public_key: z.string(),
  key_id: z.string(),
  agent_id: z.string(),
  revoked_at: z.string(),
  reason: z.enum(['rotated', 'rebound']),
});
export type RevocationInfo = z.infer<typeof revocationSchema>;

/** POST /admin/agents/rebind body. */
export const rebindRequestSchema = z.object({
  agent_id: z.string(),
  public_key: b64urlKey,
  reason: z.string().max(200).optional(),
});
export type RebindRequest = z.infer<typeof rebindRequestSchema>;

/** POST /admin/agents/rebind answer. */
export const rebindResponseSchema = z.object({
  status: z.literal('rebound'),
  agent_id: z.string(),
  binding: keyBindingSchema,
  /** The binding it replaced (null: the id was not bound yet). */
  previous: keyBindingSchema.nullable(),
  /** The previous key, now refused at registration (null when nothing changed). */
  revoked: revocationSchema.nullable(),
  /** Registrations under the old key that were closed. */
  disconnected: z.number().int().nonnegative(),
});
export type RebindResponse = z.infer<typeof rebindResponseSchema>;

/** GET /admin/agents/bindings answer. */
export const bindingsResponseSchema = z.object({
  bindings: z.array(keyBindingSchema),
  revoked: z.array(revocationSchema),
});
export type BindingsResponse = z.infer<typeof bindingsResponseSchema>;
