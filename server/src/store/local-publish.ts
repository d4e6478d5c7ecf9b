/**
 * Publisher threads for the local store's small create-once objects (WAL objects above all).
 *
 * Why: publishing an object is open, write, set mtime, fsync, stat, close, link, unlink, fsync
 * of the folder. Through node:fs/promises each is a thread-pool job whose completion the event
 * loop must pick up before the next can start; on a busy loop (16 metadata operations in
 * flight) every hop waited for a turn, and a WAL object took ~1.4 ms to land where the system
 * calls take ~0.25 ms, while costing the loop ~0.5 ms of promise and handle machinery. A
 * publisher thread runs the same calls back to back: one message each way.
 *
 * Bodies are copied into the message (shared memory is passed by reference), so only small
 * bodies come here (see PUBLISH_MAX_BYTES); large ones stay on the thread pool, where the hops
 * are few per byte. The threads are shared by every LocalStore of the process, started on first
 * use, and do not keep the process alive while idle.
 *
 * Bounds: how many publishes wait is bounded by the callers (the WAL writer's uploads in flight,
 * the segment writer's budget). A thread that dies fails its publishes and every later one, with
 * an error naming it; nothing is retried silently.
 */
import { Worker } from "node:worker_threads";

/** Bodies up to this size are published by a publisher thread. */
export const PUBLISH_MAX_BYTES = 256 * 1024;
const THREADS = 2;

export interface PublishRequest {
  id: number;
  tmp: string;
  path: string;
  dir: string;
  mode: number;
  /** mtime and atime, seconds. */
  stamp: number;
  body: Uint8Array;
}

/** The step of a publish that failed: writing the temp file, linking it, or syncing the folder. */
export type PublishStep = "write" | "link" | "fsyncDir";

export type PublishReply = { id: number; etag: string; step?: undefined } | { id: number; step: PublishStep; code: string; message: string };

interface Slot {
  worker: Worker;
  pending: Map<number, (r: PublishReply) => void>;
}

let slots: Slot[] | undefined;
let failed: Error | undefined;
let nextId = 1;

function start(): Slot[] {
  const out: Slot[] = [];
  for (let i = 0; i < THREADS; i++) {
    const worker = new Worker(new URL("./local-publish-worker.ts", import.meta.url), {
      name: `zerofs-publish-${i}`,
      // As in crypto-workers.ts: the process's flags, unless `--input-type` would fail the start.
      execArgv: process.execArgv.some((a) => a.startsWith("--input-type")) ? [] : undefined,
    });
    const slot: Slot = { worker, pending: new Map() };
    worker.on("message", (r: PublishReply) => {
      const done = slot.pending.get(r.id);
      slot.pending.delete(r.id);
      if (slot.pending.size === 0) worker.unref();
      done?.(r);
    });
    const die = (err: Error): void => {
      failed ??= err;
      for (const done of slot.pending.values()) done({ id: 0, step: "write", code: "EIO", message: err.message });
      slot.pending.clear();
    };
    worker.on("error", (err: Error) => die(new Error(`local store publisher ${i} failed: ${err.message}`, { cause: err })));
    worker.on("exit", (code) => die(new Error(`local store publisher ${i} exited with code ${code}`)));
    // After the listeners: adding a "message" listener refs the worker's port again, and an
    // idle publisher must not keep the process alive.
    worker.unref();
    out.push(slot);
  }
  return out;
}

/**
 * What a publish sends of `body`: shared memory by reference; anything else copied once into a
 * buffer of its own that moves (cloning a view would copy the whole buffer under it: the WAL
 * writer's scratch, Node's pool).
 */
export function messageBody(body: Uint8Array): { body: Uint8Array; transfer: ArrayBuffer[] } {
  if (body.buffer instanceof SharedArrayBuffer) return { body, transfer: [] };
  const copy = new Uint8Array(body);
  return { body: copy, transfer: [copy.buffer] };
}

/** Runs one publish on the least busy publisher thread. */
export function publishOnThread(req: Omit<PublishRequest, "id">): Promise<PublishReply> {
  if (failed) return Promise.reject(failed);
  slots ??= start();
  let slot = slots[0]!;
  for (const s of slots) if (s.pending.size < slot.pending.size) slot = s;
  const id = nextId++;
  const { body, transfer } = messageBody(req.body);
  return new Promise<PublishReply>((resolve) => {
    if (slot.pending.size === 0) slot.worker.ref();
    slot.pending.set(id, resolve);
    slot.worker.postMessage({ ...req, id, body } satisfies PublishRequest, transfer);
  });
}
