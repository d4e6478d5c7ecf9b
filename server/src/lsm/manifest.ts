/**
 * The manifest: which SSTs make up the database, and how far the WAL has been flushed.
 *
 * Manifests are immutable objects `manifest/<20-digit id>` written with put-if-absent, so the
 * sequence of ids is a linearizable log of states and the highest id is the current state.
 * A writer that loses a put-if-absent has been fenced by a newer writer.
 *
 * Format (version 1):  "ZMAN" | u8 version = 1 | sealed(JSON body)
 * The body is sealed with AAD = blockAad(objectKey, 0) because SST key ranges (first/last keys)
 * are user data. JSON keeps the structure easy to evolve; keys are base64 in it.
 */
import type { Sealer } from "../crypto/sealer.ts";
import { blockAad } from "../crypto/sealer.ts";
import { PreconditionFailedError } from "../store/errors.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { CorruptObjectError } from "./errors.ts";
import { MANIFEST_DIR, manifestKey, parseId } from "./object-names.ts";

const MAGIC = Buffer.from("ZMAN", "latin1");
const VERSION = 1;

export interface SstRef {
  key: string;
  size: number;
  firstKey: Buffer;
  lastKey: Buffer;
  entryCount: number;
}

/** SSTs with disjoint key ranges, in ascending key order. */
export interface SortedRun {
  id: number;
  ssts: SstRef[];
}

export interface ManifestState {
  /** Epoch of the writer that owns the store; bumped by every opening writer. */
  epoch: number;
  /** Every WAL object with id ≤ walFlushedUpto is fully contained in SSTs. */
  walFlushedUpto: number;
  /** Highest batch sequence number contained in SSTs. */
  lastFlushedSeq: number;
  nextSstId: number;
  nextRunId: number;
  /** L0 SSTs from flushes, newest first. */
  l0: SstRef[];
  /** Sorted runs from compaction, newest first. */
  runs: SortedRun[];
}

export function emptyManifest(): ManifestState {
  return { epoch: 0, walFlushedUpto: 0, lastFlushedSeq: 0, nextSstId: 1, nextRunId: 1, l0: [], runs: [] };
}

interface SstRefJson {
  key: string;
  size: number;
  firstKey: string;
  lastKey: string;
  entryCount: number;
}

const refToJson = (r: SstRef): SstRefJson => ({
  key: r.key,
  size: r.size,
  firstKey: r.firstKey.toString("base64"),
  lastKey: r.lastKey.toString("base64"),
  entryCount: r.entryCount,
});

function refFromJson(objectKey: string, j: unknown): SstRef {
  const r = j as Partial<SstRefJson> | null;
  if (!r || typeof r.key !== "string" || typeof r.size !== "number" || typeof r.firstKey !== "string" ||
    typeof r.lastKey !== "string" || typeof r.entryCount !== "number") {
    throw new CorruptObjectError(objectKey, "manifest has a malformed SST reference");
  }
  return {
    key: r.key,
    size: r.size,
    firstKey: Buffer.from(r.firstKey, "base64"),
    lastKey: Buffer.from(r.lastKey, "base64"),
    entryCount: r.entryCount,
  };
}

export async function encodeManifest(id: number, state: ManifestState, sealer: Sealer): Promise<Buffer> {
  const json = JSON.stringify({
    ...state,
    l0: state.l0.map(refToJson),
    runs: state.runs.map((r) => ({ id: r.id, ssts: r.ssts.map(refToJson) })),
  });
  const sealed = await sealer.seal(Buffer.from(json, "utf8"), blockAad(manifestKey(id), 0));
  return Buffer.concat([MAGIC, Buffer.of(VERSION), sealed]);
}

export async function decodeManifest(id: number, data: Buffer, sealer: Sealer): Promise<ManifestState> {
  const key = manifestKey(id);
  if (data.length < 5 || !data.subarray(0, 4).equals(MAGIC)) throw new CorruptObjectError(key, "not a manifest (bad magic)");
  if (data[4] !== VERSION) throw new CorruptObjectError(key, `unsupported manifest format version ${data[4]}`);
  let body: Buffer;
  try {
    body = await sealer.open(data.subarray(5), blockAad(key, 0));
  } catch (err) {
    throw new CorruptObjectError(key, "manifest fails authentication (corrupt, truncated or wrong key)", { cause: err });
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new CorruptObjectError(key, "manifest body is not valid JSON", { cause: err });
  }
  const num = (name: string): number => {
    const v = j[name];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new CorruptObjectError(key, `manifest field ${name} is not a count`);
    return v;
  };
  if (!Array.isArray(j.l0) || !Array.isArray(j.runs)) throw new CorruptObjectError(key, "manifest lacks l0/runs");
  return {
    epoch: num("epoch"),
    walFlushedUpto: num("walFlushedUpto"),
    lastFlushedSeq: num("lastFlushedSeq"),
    nextSstId: num("nextSstId"),
    nextRunId: num("nextRunId"),
    l0: (j.l0 as unknown[]).map((r) => refFromJson(key, r)),
    runs: (j.runs as unknown[]).map((r) => {
      const run = r as { id?: unknown; ssts?: unknown };
      if (typeof run.id !== "number" || !Array.isArray(run.ssts)) throw new CorruptObjectError(key, "manifest has a malformed sorted run");
      return { id: run.id, ssts: (run.ssts as unknown[]).map((s) => refFromJson(key, s)) };
    }),
  };
}

/** Lists manifest ids in ascending order. */
export async function listManifestIds(store: ObjectStore): Promise<number[]> {
  const ids: number[] = [];
  for (const m of await store.list(MANIFEST_DIR)) {
    const id = parseId(MANIFEST_DIR, m.key);
    if (id !== undefined) ids.push(id);
  }
  return ids.sort((a, b) => a - b);
}

export async function readLatestManifest(store: ObjectStore, sealer: Sealer): Promise<{ id: number; state: ManifestState } | undefined> {
  const ids = await listManifestIds(store);
  const id = ids[ids.length - 1];
  if (id === undefined) return undefined;
  const data = await store.get(manifestKey(id));
  return { id, state: await decodeManifest(id, data, sealer) };
}

/**
 * Writes manifest `id` if absent. Returns false when another writer got there first (our own
 * earlier attempt whose reply was lost counts as success).
 */
export async function tryWriteManifest(store: ObjectStore, id: number, body: Buffer): Promise<boolean> {
  const key = manifestKey(id);
  try {
    await store.putIfAbsent(key, body);
    return true;
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
    const existing = await store.get(key).catch(() => undefined);
    return existing?.equals(body) === true;
  }
}
