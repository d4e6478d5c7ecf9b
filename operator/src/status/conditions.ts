/** metav1.Condition bookkeeping: a condition's lastTransitionTime moves only when its status does. */
import type { Condition } from "../api/types.ts";

export const COND_READY = "Ready";
export const COND_PROGRESSING = "Progressing";
export const COND_DEGRADED = "Degraded";
export const COND_PASSWORD_ROTATION = "PasswordRotation";
export const CONDITION_ORDER = [COND_READY, COND_PROGRESSING, COND_DEGRADED, COND_PASSWORD_ROTATION];

export type ConditionInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/** Merges `next` into `prev`, keeping transition times of unchanged statuses; output sorted by CONDITION_ORDER. */
export function mergeConditions(prev: Condition[] | undefined, next: ConditionInput[], now: string, generation: number): Condition[] {
  const byType = new Map((prev ?? []).map((c) => [c.type, c]));
  const out: Condition[] = next.map((n) => {
    const old = byType.get(n.type);
    return {
      type: n.type,
      status: n.status,
      reason: n.reason,
      message: n.message,
      lastTransitionTime: old && old.status === n.status ? old.lastTransitionTime : now,
      observedGeneration: generation,
    };
  });
  // Keep foreign conditions (set by other tools) rather than erase them.
  for (const c of prev ?? []) if (!next.some((n) => n.type === c.type)) out.push(c);
  const rank = (t: string) => {
    const i = CONDITION_ORDER.indexOf(t);
    return i < 0 ? CONDITION_ORDER.length : i;
  };
  return out.sort((a, b) => rank(a.type) - rank(b.type) || a.type.localeCompare(b.type));
}

export function findCondition(conds: Condition[] | undefined, type: string): Condition | undefined {
  return conds?.find((c) => c.type === type);
}
