import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ApiKeys, CreatedKey } from './api-keys.ts';

/** Tenant of the key created on first start in embedded mode. */
export const BOOTSTRAP_TENANT = 'default';

/**
 * On first start (no active key at all), creates a key for the `default` tenant and writes it
 * to `keyFile` with owner-only permissions. Returns the key when one was created.
 */
export async function ensureBootstrapKey(
  keys: ApiKeys,
  keyFile: string,
): Promise<CreatedKey | null> {
  if (await keys.anyActive()) return null;
  const created = await keys.create(BOOTSTRAP_TENANT, 'bootstrap');
  mkdirSync(dirname(keyFile), { recursive: true });
  writeFileSync(keyFile, `${created.key}\n`, { mode: 0o600 });
  chmodSync(keyFile, 0o600); // mode applies only when the file is new
  return created;
}
