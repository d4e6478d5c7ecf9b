/**
 * Worker threads that encrypt and open file data frames off the event loop.
 *
 * Why: on a sequential write or a cold read, sealing or opening 32 KiB frames was a third of the
 * event loop's time; the loop also parses RPCs, runs the metadata path and answers every other
 * client. The frames are independent, so they go to other cores.
 *
 * Cost model: each event-loop turn's jobs travel as one batch per worker, one message each way.
 * Inputs that live in a SharedArrayBuffer (large RPC records, ranged reads, S3 bodies: see
 * store/shared-buffer.ts) are passed by reference — the loop copies
 * nothing; other inputs are copied once into a transferred buffer. Outputs that own their
 * memory as OpenSSL returned it are transferred back as they are, the rest (headers, tags, and
 * zstd's output, which a native addon allocated and V8 cannot transfer) packed into one
 * transferred buffer: measured on a 1 GiB write, the two copies this replaces cost the loop
 * 0.5 s and the worker 0.2 s (0.8 s on a cold read).
 *
 * Bounds: a batch carries at most MAX_BATCH_BYTES of input; how much is in flight at all is
 * bounded by the callers (the segment writer's buffer budget, the RPC layer's reply budget).
 * A worker that dies fails its jobs and every later one (the sealer's errors name it); nothing
 * is retried silently.
 */
import { Worker } from "node:worker_threads";
import { SealError } from "./sealer.ts";

const MAX_BATCH_BYTES = 8 * 1024 * 1024;

const Kind = { Seal: 0, Open: 1 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

interface Job {
  kind: Kind;
  key: number;
  flags: number;
  data: Uint8Array;
  aad: Uint8Array;
  resolve: (b: Buffer[]) => void;
  reject: (e: Error) => void;
}

/** Fields per job in BatchMessage.meta. */
export const META_FIELDS = 8;

/** Where a job's data is: in the batch's copied buffer, or in one of its shared buffers. */
export const IN_BATCH = -1;

/**
 * What a batch result carries per job: its output as pieces, each [buffer index, offset,
 * length] into ResultMessage.bufs; or an error.
 */
export type JobResult = [number, number, number][] | { error: string; seal: boolean };

export interface BatchMessage {
  type: "batch";
  id: number;
  /** Per job: kind, key, flags, data source (IN_BATCH or an index into `shared`), data offset, data length, aad offset (in `buf`), aad length. */
  meta: Int32Array;
  buf: ArrayBuffer;
  shared: SharedArrayBuffer[];
}

export interface KeyMessage {
  type: "key";
  index: number;
  key: Uint8Array;
}

export interface ResultMessage {
  id: number;
  results: JobResult[];
  /** Transferred: [0] holds the packed small pieces, the others are outputs as the worker made them. */
  bufs: ArrayBuffer[];
}

interface Slot {
  worker: Worker;
  pending: Map<number, Job[]>;
  bytes: number;
}

export class CryptoWorkers {
  readonly threads: number;
  readonly #slots: Slot[] = [];
  #queue: Job[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  #nextBatch = 1;
  #keys = 0;
  #failed: Error | undefined;
  #closed = false;

  /** `script`: the worker's module (tests give one that fails). */
  constructor(threads: number, script = new URL("./crypto-worker.ts", import.meta.url)) {
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new RangeError(`crypto threads must be an integer from 1 to 64, got ${threads}`);
    this.threads = threads;
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(script, {
        name: `zerofs-crypto-${i}`,
        // Workers inherit the process's flags (profiling ones included), except in a process
        // running code given with --eval (a test's child): its `--input-type` fails a worker's start.
        execArgv: process.execArgv.some((a) => a.startsWith("--input-type")) ? [] : undefined,
      });
      const slot: Slot = { worker, pending: new Map(), bytes: 0 };
      worker.on("message", (m: ResultMessage) => this.#onResult(slot, m));
      worker.on("error", (err: Error) => this.#fail(new Error(`crypto worker ${i} failed: ${err.message}`, { cause: err })));
      worker.on("exit", (code) => {
        if (!this.#closed) this.#fail(new Error(`crypto worker ${i} exited with code ${code}`));
      });
      // Idle workers must not keep the process alive; a worker with jobs does (ref'd in #flush).
      // After the listeners: adding a "message" listener refs the worker's port again (a
      // worker that never got a batch kept the process alive).
      worker.unref();
      this.#slots.push(slot);
    }
  }

  /** Gives every worker `key`; returns its index for seal/open. The workers keep a copy. */
  register(key: Uint8Array): number {
    const index = this.#keys++;
    for (const s of this.#slots) s.worker.postMessage({ type: "key", index, key: Uint8Array.from(key) } satisfies KeyMessage);
    return index;
  }

  /** Encrypts a final (compressed or raw) body: resolves to the sealed block, as pieces. */
  seal(key: number, body: Uint8Array, flags: number, aad: Uint8Array): Promise<Buffer[]> {
    return this.#submit(Kind.Seal, key, flags, body, aad);
  }

  /** Authenticates, decrypts and decompresses a sealed block. */
  async open(key: number, sealed: Uint8Array, aad: Uint8Array): Promise<Buffer> {
    const parts = await this.#submit(Kind.Open, key, 0, sealed, aad);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#fail(new Error("crypto workers closed"));
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }

  #submit(kind: Kind, key: number, flags: number, data: Uint8Array, aad: Uint8Array): Promise<Buffer[]> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise<Buffer[]>((resolve, reject) => {
      this.#queue.push({ kind, key, flags, data, aad, resolve, reject });
      this.#queuedBytes += data.length + aad.length;
      if (this.#queuedBytes >= MAX_BATCH_BYTES) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        // Everything submitted in this turn (all frames of a WRITE, all of a READ) goes together.
        queueMicrotask(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const jobs = this.#queue;
    if (jobs.length === 0) return;
    this.#queue = [];
    const total = this.#queuedBytes;
    this.#queuedBytes = 0;
    if (this.#failed) {
      for (const j of jobs) j.reject(this.#failed);
      return;
    }
    // Shared inputs travel by reference; only the others (and every AAD) are copied.
    let copied = 0;
    for (const j of jobs) copied += j.aad.length + (j.data.buffer instanceof SharedArrayBuffer ? 0 : j.data.length);
    const buf = Buffer.allocUnsafeSlow(copied);
    const shared: SharedArrayBuffer[] = [];
    const sharedIndex = new Map<SharedArrayBuffer, number>();
    const meta = new Int32Array(jobs.length * META_FIELDS);
    let at = 0;
    jobs.forEach((j, i) => {
      const m = i * META_FIELDS;
      meta[m] = j.kind;
      meta[m + 1] = j.key;
      meta[m + 2] = j.flags;
      const sab = j.data.buffer instanceof SharedArrayBuffer ? j.data.buffer : undefined;
      if (sab) {
        let index = sharedIndex.get(sab);
        if (index === undefined) {
          index = shared.push(sab) - 1;
          sharedIndex.set(sab, index);
        }
        meta[m + 3] = index;
        meta[m + 4] = j.data.byteOffset;
      } else {
        meta[m + 3] = IN_BATCH;
        meta[m + 4] = at;
        buf.set(j.data, at);
        at += j.data.length;
      }
      meta[m + 5] = j.data.length;
      meta[m + 6] = at;
      meta[m + 7] = j.aad.length;
      buf.set(j.aad, at);
      at += j.aad.length;
    });
    // The least loaded worker takes the batch.
    let slot = this.#slots[0]!;
    for (const s of this.#slots) if (s.bytes < slot.bytes) slot = s;
    const id = this.#nextBatch++;
    if (slot.pending.size === 0) slot.worker.ref();
    slot.pending.set(id, jobs);
    slot.bytes += total;
    const msg: BatchMessage = { type: "batch", id, meta, buf: buf.buffer, shared };
    slot.worker.postMessage(msg, [msg.buf, meta.buffer]);
  }

  #onResult(slot: Slot, m: ResultMessage): void {
    const jobs = slot.pending.get(m.id);
    if (!jobs) return;
    slot.pending.delete(m.id);
    if (slot.pending.size === 0) slot.worker.unref();
    for (const j of jobs) slot.bytes -= j.data.length + j.aad.length;
    jobs.forEach((j, i) => {
      const r = m.results[i];
      if (Array.isArray(r)) j.resolve(r.map(([b, offset, length]) => Buffer.from(m.bufs[b]!, offset, length)));
      else j.reject(r?.seal ? new SealError(r.error) : new Error(r?.error ?? "crypto worker returned no result"));
    });
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    for (const s of this.#slots) {
      for (const jobs of s.pending.values()) for (const j of jobs) j.reject(err);
      s.pending.clear();
      s.bytes = 0;
    }
    for (const j of this.#queue.splice(0)) j.reject(err);
    this.#queuedBytes = 0;
  }
}
