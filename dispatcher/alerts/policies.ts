/**
 * Where each community's escalation policy is kept (ESC-01): a settings document per community, in the
 * database both backends share. A raise takes it through the directory (directory.ts `policy`), which keeps
 * it until an admin saves another, here or on another dispatcher instance (announced, CLU-11). A community
 * that set none runs the SPEC §6 default.
 */
import type { Store } from '../store/store.ts';
import { DEFAULT_POLICY, type EscalationPolicy, policySchema } from './policy.ts';

export interface CommunityPolicy {
  community: string;
  policy: EscalationPolicy;
  /** True while the community runs the SPEC §6 default (it never saved a policy of its own). */
  isDefault: boolean;
  updatedAt: number | null;
  updatedBy: string | null;
}

const key = (community: string) => `escalation_policy/${community}`;

export async function communityPolicy(
  store: Pick<Store, 'getSetting'>,
  community: string,
): Promise<CommunityPolicy> {
  const raw = await store.getSetting(key(community));
  const doc = raw ? (JSON.parse(raw) as { policy: unknown; updatedAt: number; updatedBy: string }) : null;
  // Saved policies were checked on save; one that no longer parses (a hand-edited row) runs the default.
  const parsed = doc ? policySchema.safeParse(doc.policy) : null;
  if (!doc || !parsed?.success)
    return { community, policy: DEFAULT_POLICY, isDefault: true, updatedAt: null, updatedBy: null };
  return {
    community,
    policy: parsed.data,
    isDefault: false,
    updatedAt: doc.updatedAt,
    updatedBy: doc.updatedBy,
  };
}

/** Saves a policy already checked by `policySchema`; alerts already raised keep theirs (ESC-02). */
export async function saveCommunityPolicy(
  store: Pick<Store, 'setSetting'>,
  community: string,
  policy: EscalationPolicy,
  at: number,
  by: string,
): Promise<void> {
  await store.setSetting(key(community), JSON.stringify({ policy, updatedAt: at, updatedBy: by }));
}
