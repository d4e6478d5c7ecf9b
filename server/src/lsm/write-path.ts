/**
 * A Db's writes: a batch goes into the active memtable and the WAL's group commit; writers
 * wait for room while too many frozen memtables wait for their upload, and for durability,
 * each wait bounded by durableWaitMs.
 */
import { StoreUnavailableError } from "../store/errors.ts";
import type { DbCore } from "./db-core.ts";
import type { WriteOptions } from "./db-options.ts";
import { freezeActive } from "./memtable-flush.ts";
import { SST_DIR, WAL_DIR } from "./object-names.ts";
import { encodeBatch } from "./wal-format.ts";
import type { WriteBatch } from "./write-batch.ts";

/** Db.write: applies a batch atomically; by default resolves once it is durable. */
export async function write(db: DbCore, batch: WriteBatch, opts: WriteOptions = {}): Promise<void> {
  db.checkOpen();
  if (batch.isEmpty) return;
  while (db.imm.length >= db.opts.maxImmutableMemtables) {
    await bounded(db, new Promise<void>((resolve) => db.capacityWaiters.push(resolve)), "put", SST_DIR, `room for writes (${db.imm.length} memtables wait for their upload)`);
    db.checkOpen();
  }
  const seq = ++db.lastSeq;
  const minSnap = db.minSnapshot();
  for (const op of batch.ops) db.active.put(op.key, op.value, seq, minSnap);
  const { parts, bytes } = encodeBatch(seq, batch);
  const durable = db.wal.append(parts, bytes, opts.awaitDurable !== false);
  if (db.active.approximateBytes >= db.opts.memtableBytes) freezeActive(db);
  if (opts.awaitDurable !== false) await bounded(db, durable, "putIfAbsent", WAL_DIR, "durability (the WAL upload)");
}

/** Db.flush: makes every write so far durable (one shared WAL flush for concurrent callers). */
export async function flush(db: DbCore): Promise<void> {
  db.checkOpen();
  await bounded(db, db.wal.flush(), "putIfAbsent", WAL_DIR, "durability (the WAL upload)");
}

/** Waits for `p` at most durableWaitMs; the work behind it goes on after a timeout. */
async function bounded<T>(db: DbCore, p: Promise<T>, op: "put" | "putIfAbsent", key: string, what: string): Promise<T> {
  const ms = db.opts.durableWaitMs;
  if (!Number.isFinite(ms)) return p;
  // Abandoned on timeout: its later rejection (e.g. at close) must not go unhandled.
  p.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new StoreUnavailableError(db.store.description, op, key, "timeout", `waited ${ms / 1000} s for ${what}; the write stays queued and is retried`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
