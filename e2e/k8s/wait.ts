/** Polling with a deadline that says what it waited for and what it saw last. */
import { setTimeout as sleep } from "node:timers/promises";

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false | null>, o: { timeoutMs?: number; intervalMs?: number; describe?: () => Promise<string> } = {}): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false && v !== null) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const extra = o.describe ? await o.describe().catch((e: unknown) => `(describe failed: ${(e as Error).message})`) : "";
      throw new Error(`timed out after ${o.timeoutMs ?? 60_000} ms waiting for ${what}${lastErr ? `; last error: ${(lastErr as Error).message}` : ""}${extra ? `\n${extra}` : ""}`);
    }
    await sleep(o.intervalMs ?? 250);
  }
}
