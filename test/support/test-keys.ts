import { createHash } from "node:crypto";
import { createBlockSealer } from "../../server/src/crypto/block-sealer.ts";
import type { CryptoWorkers } from "../../server/src/crypto/crypto-workers.ts";
import type { Sealer } from "../../server/src/crypto/sealer.ts";
import type { SealerSource } from "../../server/src/lsm/db.ts";

/**
 * Per-purpose sealers from a fixed test secret, without Argon2 (which costs ~200 ms per
 * open). Engine tests that are about keys use the real keyring instead.
 */
export function testKeys(secret = "zerofs-test-secret"): SealerSource {
  const sealers = new Map<string, Sealer>();
  return {
    sealer(purpose: string, opts: { workers?: CryptoWorkers } = {}): Sealer {
      // One sealer per purpose and pool: a pooled sealer registers its key with that pool.
      const id = opts.workers ? purpose : `${purpose}\0inline`;
      let s = opts.workers ? undefined : sealers.get(id);
      if (!s) {
        s = createBlockSealer(createHash("sha256").update(`${secret}/${purpose}`).digest(), opts.workers ? { workers: opts.workers } : {});
        if (!opts.workers) sealers.set(id, s);
      }
      return s;
    },
  };
}
