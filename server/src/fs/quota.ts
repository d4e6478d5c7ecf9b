/**
 * Directory quotas after XFS project quotas (docs/quotas.md). A project is a directory tree: the
 * directory's inode carries a project id, and every inode created below it inherits the id
 * (inode-codec.ts). Each project has a record Q|project (limits, its directory, whether it is
 * being deleted) and usage counters (bytes as the volume counters count them: apparent sizes of
 * regular files and symlinks; inodes), kept in sharded counter keys like the volume's.
 *
 * Accounting is derived, not hand-written per operation: when an operation's batch is applied,
 * `prepare` compares each inode it changes with the inode's current (pre-batch) state and sums
 * the usage that moved between projects; `commit` puts the new shard values into the SAME batch,
 * so usage is exact after any crash. Growth past a limit fails the operation with EDQUOT before
 * anything is written; growth is reserved while the batch is in flight, so concurrent writers
 * cannot both squeeze under a limit. Shrinking is always allowed, also below a lowered limit.
 */
import type { Db } from "../lsm/db.ts";
import type { WriteBatch } from "../lsm/write-batch.ts";
import { fsError } from "./errors.ts";
import type { Inode } from "./inode-codec.ts";
import {
  COUNTER_SHARDS,
  CounterKind,
  MAX_PROJECT_ID,
  PROJECT_RANGE,
  parseProjectCounterKey,
  parseProjectKey,
  projectCounterKey,
  projectCounterRange,
  projectKey,
  readU64,
  writeU64,
} from "./keys.ts";
import { KeyedMutex } from "./locks.ts";
import { decodeCounter, encodeCounter } from "./records.ts";
import { FileType } from "./types.ts";

export interface QuotaLimits {
  /** null = unlimited. */
  bytes: number | null;
  inodes: number | null;
}

export interface Usage {
  bytes: number;
  inodes: number;
}

export interface ProjectRecord {
  id: number;
  /** The project's directory (the root of its tree). */
  dirIno: number;
  limits: QuotaLimits;
  /** Detached from the namespace; its tree is being reclaimed in the background. */
  deleting: boolean;
}

// ---------------------------------------------------------------- record codec

const RECORD_VERSION = 1;
const RECORD_BYTES = 27;
const F_BYTES = 1;
const F_INODES = 2;
const F_DELETING = 4;

/** version u8 · flags u8 · dirIno u64 · bytes limit u64 · inodes limit u64 · reserved u8 */
export function encodeProjectRecord(r: ProjectRecord): Buffer {
  const buf = Buffer.alloc(RECORD_BYTES);
  buf[0] = RECORD_VERSION;
  buf[1] = (r.limits.bytes !== null ? F_BYTES : 0) | (r.limits.inodes !== null ? F_INODES : 0) | (r.deleting ? F_DELETING : 0);
  writeU64(buf, r.dirIno, 2);
  writeU64(buf, r.limits.bytes ?? 0, 10);
  writeU64(buf, r.limits.inodes ?? 0, 18);
  return buf;
}

export function decodeProjectRecord(id: number, buf: Buffer): ProjectRecord {
  if (buf.length !== RECORD_BYTES || buf[0] !== RECORD_VERSION) throw fsError("EIO", `quota project ${id}: corrupt record (${buf.length} bytes, version ${buf[0]})`);
  const flags = buf[1]!;
  return {
    id,
    dirIno: readU64(buf, 2),
    limits: { bytes: flags & F_BYTES ? readU64(buf, 10) : null, inodes: flags & F_INODES ? readU64(buf, 18) : null },
    deleting: (flags & F_DELETING) !== 0,
  };
}

// ---------------------------------------------------------------- accounting

/** What one inode counts toward its project. */
function usageOf(i: Inode): Usage {
  return { bytes: i.type === FileType.REG || i.type === FileType.LNK ? i.size : 0, inodes: 1 };
}

/** The accounting of one operation between `prepare` and its commit. */
export interface QuotaTxn {
  deltas: Map<number, Usage>;
  reserved: Map<number, Usage>;
}

const EMPTY_TXN: QuotaTxn = { deltas: new Map(), reserved: new Map() };

interface Counts {
  bytes: number[];
  inodes: number[];
}

export class Quotas {
  private readonly records = new Map<number, ProjectRecord>();
  private readonly counts = new Map<number, Counts>();
  private readonly reservedUsage = new Map<number, Usage>();
  private readonly shardLocks = new KeyedMutex();
  private nextId = 1;

  static async load(db: Db): Promise<Quotas> {
    const q = new Quotas();
    for await (const e of db.scan(...PROJECT_RANGE)) {
      const id = parseProjectKey(e.key);
      q.records.set(id, decodeProjectRecord(id, e.value!));
      q.nextId = Math.max(q.nextId, id + 1);
    }
    for (const kind of [CounterKind.PROJECT_BYTES, CounterKind.PROJECT_INODES] as const) {
      for await (const e of db.scan(...projectCounterRange(kind))) {
        const { project, shard } = parseProjectCounterKey(e.key);
        const c = q.countsOf(project);
        const arr = kind === CounterKind.PROJECT_BYTES ? c.bytes : c.inodes;
        while (arr.length <= shard) arr.push(0);
        arr[shard] = decodeCounter(e.value!, `project ${project} ${kind}/${shard}`);
      }
    }
    return q;
  }

  private countsOf(project: number): Counts {
    let c = this.counts.get(project);
    if (!c) {
      c = { bytes: new Array<number>(COUNTER_SHARDS).fill(0), inodes: new Array<number>(COUNTER_SHARDS).fill(0) };
      this.counts.set(project, c);
    }
    return c;
  }

  /** True when no project exists: operations skip the accounting entirely. */
  get empty(): boolean {
    return this.records.size === 0;
  }

  record(project: number): ProjectRecord | undefined {
    return this.records.get(project);
  }

  all(): ProjectRecord[] {
    return [...this.records.values()];
  }

  usage(project: number): Usage {
    const c = this.counts.get(project);
    if (!c) return { bytes: 0, inodes: 0 };
    return { bytes: c.bytes.reduce((a, b) => a + b, 0), inodes: c.inodes.reduce((a, b) => a + b, 0) };
  }

  /** A fresh project id (the caller registers it with `register` before using it). */
  allocateId(): number {
    if (this.nextId > MAX_PROJECT_ID) throw fsError("ENOSPC", `no quota project ids left (${MAX_PROJECT_ID} used)`);
    return this.nextId++;
  }

  /** Puts the record into `batch`; call `register` once the batch is applied. */
  putRecord(batch: WriteBatch, r: ProjectRecord): void {
    batch.put(projectKey(r.id), encodeProjectRecord(r));
  }

  /** The in-memory copy of a record (after its batch is applied, or just before, to account it). */
  register(r: ProjectRecord): void {
    this.records.set(r.id, { ...r, limits: { ...r.limits } });
  }

  unregister(id: number): void {
    this.records.delete(id);
  }

  /** Deletes the record and every counter shard of a project (its tree is gone, usage 0). */
  deleteProject(batch: WriteBatch, id: number): void {
    batch.delete(projectKey(id));
    const c = this.counts.get(id);
    const shards = Math.max(COUNTER_SHARDS, c?.bytes.length ?? 0, c?.inodes.length ?? 0);
    for (let s = 0; s < shards; s++) {
      batch.delete(projectCounterKey(CounterKind.PROJECT_BYTES, id, s));
      batch.delete(projectCounterKey(CounterKind.PROJECT_INODES, id, s));
    }
  }

  /** Forgets a project deleted by `deleteProject` once that batch is applied. */
  forget(id: number): void {
    this.records.delete(id);
    this.counts.delete(id);
    this.reservedUsage.delete(id);
  }

  /**
   * Usage moved by an operation that changes `changes` (new states; null = deleted) from their
   * current states (`before`; `fresh` inodes did not exist). EDQUOT when a project would grow
   * past a limit (or gain an inode while its bytes are at the limit); ESTALE when it grows while
   * it is being deleted. Reserves the growth until `release`.
   */
  async prepare(
    changes: ReadonlyMap<number, Inode | null>,
    fresh: ReadonlySet<number>,
    before: (ino: number) => Promise<Inode | undefined>,
    what: string,
  ): Promise<QuotaTxn> {
    const deltas = new Map<number, Usage>();
    const add = (project: number | undefined, u: Usage, sign: 1 | -1): void => {
      if (!project) return;
      const d = deltas.get(project) ?? { bytes: 0, inodes: 0 };
      d.bytes += sign * u.bytes;
      d.inodes += sign * u.inodes;
      deltas.set(project, d);
    };
    for (const [ino, next] of changes) {
      const prev = fresh.has(ino) ? undefined : await before(ino);
      if (prev) add(prev.project, usageOf(prev), -1);
      if (next) add(next.project, usageOf(next), 1);
    }
    if (deltas.size === 0) return EMPTY_TXN;
    for (const [project, d] of deltas) {
      if (d.bytes <= 0 && d.inodes <= 0) continue;
      const r = this.records.get(project);
      if (!r) throw fsError("EIO", `${what}: inode of quota project ${project}, which has no record`);
      if (r.deleting) throw fsError("ESTALE", `${what}: the directory tree of quota project ${project} is being deleted`);
      const used = this.usage(project);
      const res = this.reservedUsage.get(project) ?? { bytes: 0, inodes: 0 };
      const { bytes, inodes } = r.limits;
      if (d.bytes > 0 && bytes !== null && used.bytes + res.bytes + d.bytes > bytes) {
        throw fsError("EDQUOT", `${what}: ${d.bytes} more bytes exceed the quota of project ${project} (${used.bytes} of ${bytes} bytes used)`);
      }
      if (d.inodes > 0 && inodes !== null && used.inodes + res.inodes + d.inodes > inodes) {
        throw fsError("EDQUOT", `${what}: ${d.inodes} more inodes exceed the quota of project ${project} (${used.inodes} of ${inodes} inodes used)`);
      }
      if (d.inodes > 0 && bytes !== null && used.bytes + res.bytes >= bytes) {
        throw fsError("EDQUOT", `${what}: the byte quota of project ${project} is full (${used.bytes} of ${bytes} bytes used)`);
      }
    }
    const reserved = new Map<number, Usage>();
    for (const [project, d] of deltas) {
      const r = { bytes: Math.max(0, d.bytes), inodes: Math.max(0, d.inodes) };
      if (r.bytes === 0 && r.inodes === 0) continue;
      const res = this.reservedUsage.get(project) ?? { bytes: 0, inodes: 0 };
      this.reservedUsage.set(project, { bytes: res.bytes + r.bytes, inodes: res.inodes + r.inodes });
      reserved.set(project, r);
    }
    return { deltas, reserved };
  }

  /**
   * Early refusal of growth that cannot fit, before an operation does its data work (a write
   * refused only at commit would have stored its bytes in a segment for nothing). Reserves
   * nothing: `prepare` decides.
   */
  precheck(project: number | undefined, bytes: number, what: string): void {
    if (!project || bytes <= 0) return;
    const r = this.records.get(project);
    if (!r) return;
    if (r.deleting) throw fsError("ESTALE", `${what}: the directory tree of quota project ${project} is being deleted`);
    const used = this.usage(project).bytes + (this.reservedUsage.get(project)?.bytes ?? 0);
    if (r.limits.bytes !== null && used + bytes > r.limits.bytes) {
      throw fsError("EDQUOT", `${what}: ${bytes} more bytes exceed the quota of project ${project} (${used} of ${r.limits.bytes} bytes used)`);
    }
  }

  /** Gives back what `prepare` reserved (after the commit, or when the operation failed). */
  release(q: QuotaTxn): void {
    for (const [project, r] of q.reserved) {
      const res = this.reservedUsage.get(project);
      if (!res) continue;
      res.bytes -= r.bytes;
      res.inodes -= r.inodes;
      if (res.bytes === 0 && res.inodes === 0) this.reservedUsage.delete(project);
    }
  }

  /**
   * Runs `write` (which applies `batch`) with each changed project's new shard values in the
   * batch, holding the shards' locks so values are written in the order they were computed.
   */
  async commit(batch: WriteBatch, shardOf: number, q: QuotaTxn, write: () => Promise<void>): Promise<void> {
    if (q.deltas.size === 0) return write();
    const shard = shardOf % COUNTER_SHARDS;
    const projects = [...q.deltas.keys()];
    const release = await this.shardLocks.acquire(projects.map((p) => p * COUNTER_SHARDS + shard));
    try {
      const next: { c: Counts; bytes: number; inodes: number }[] = [];
      for (const [project, d] of q.deltas) {
        const c = this.countsOf(project);
        const bytes = c.bytes[shard]! + d.bytes;
        const inodes = c.inodes[shard]! + d.inodes;
        if (d.bytes !== 0) batch.put(projectCounterKey(CounterKind.PROJECT_BYTES, project, shard), encodeCounter(bytes));
        if (d.inodes !== 0) batch.put(projectCounterKey(CounterKind.PROJECT_INODES, project, shard), encodeCounter(inodes));
        next.push({ c, bytes, inodes });
      }
      await write();
      for (const n of next) {
        n.c.bytes[shard] = n.bytes;
        n.c.inodes[shard] = n.inodes;
      }
    } finally {
      release();
    }
  }

  /**
   * FSSTAT seen from inside a project: the limits as the size (df on a subdirectory mount shows
   * the claim's capacity), free = limit - used floored at 0. Undefined outside projects or for a
   * limit that is not set (the volume's figures apply).
   */
  statOf(project: number | undefined): { bytes?: { total: number; used: number }; inodes?: { total: number; used: number } } | undefined {
    if (!project) return undefined;
    const r = this.records.get(project);
    if (!r) return undefined;
    const used = this.usage(project);
    return {
      ...(r.limits.bytes !== null ? { bytes: { total: r.limits.bytes, used: used.bytes } } : {}),
      ...(r.limits.inodes !== null ? { inodes: { total: r.limits.inodes, used: used.inodes } } : {}),
    };
  }

  /** EXDEV unless `inode` may get a name in `dir` (both in the same project, as XFS demands). */
  static checkSameProject(inode: Inode, dir: Inode, what: string): void {
    if ((inode.project ?? 0) !== (dir.project ?? 0)) {
      throw fsError("EXDEV", `${what}: inode ${inode.ino} is in quota project ${inode.project ?? 0}, directory ${dir.ino} in project ${dir.project ?? 0}`);
    }
  }
}
