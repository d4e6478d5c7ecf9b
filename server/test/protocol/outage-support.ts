/**
 * Helpers of the store outage tests (outage.s3.test.ts, outage-local.test.ts): the health
 * endpoint and metrics of a running `zerofs`, its log lines, and an NFS writer that keeps
 * writing FILE_SYNC chunks through an outage the way a kernel client does (NFS3ERR_JUKEBOX:
 * wait, retry), remembering every acknowledged chunk so that the test can read them all back.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateMode, Nfs3Proc as P, Nfs3Status, StableHow } from "../../src/nfs/nfs3-types.ts";
import { Nfs3Client, sattr } from "../../../test/support/nfs/nfs3-client.ts";
import type { ZerofsProcess } from "../../../test/support/zerofs-process.ts";

export const CHUNK = 16 * 1024;

export async function readyz(s: ZerofsProcess): Promise<{ status: number; body: string; health: number; healthBody: string }> {
  const base = `http://127.0.0.1:${s.httpPort}`;
  const r = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(5_000) });
  const h = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5_000) });
  return { status: r.status, body: await r.text(), health: h.status, healthBody: await h.text() };
}

/** The value of a metric line (summed over its label sets when `labels` is omitted). */
export async function metric(s: ZerofsProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) sum += Number(m[2]);
  }
  return sum;
}

/** Polls `check` until it holds; returns the ms it took. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** The server's JSON log lines printed after output offset `from`. */
export function logLines(s: ZerofsProcess, from = 0): LogLine[] {
  return s
    .output()
    .slice(from)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);
}

export const chunkData = (seed: number, i: number): Buffer => Buffer.alloc(CHUNK, (seed * 31 + i) % 251);

/** Writes chunk after chunk (FILE_SYNC) to one file until stopped. */
export class Writer {
  readonly acked: number[] = [];
  jukebox = 0;
  otherErrors: string[] = [];
  maxCallMs = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private next = 0;

  readonly client: Nfs3Client;
  readonly file: Buffer;
  readonly seed: number;

  private constructor(client: Nfs3Client, file: Buffer, seed: number) {
    this.client = client;
    this.file = file;
    this.seed = seed;
  }

  static async start(port: number, name: string, seed: number): Promise<Writer> {
    const client = await Nfs3Client.connect(port);
    const root = await client.mount("/");
    const file = (await client.ok(P.CREATE, { where: { dir: root, name: Buffer.from(name) }, how: { mode: CreateMode.UNCHECKED, attributes: sattr({ mode: 0o644 }) } })).obj!;
    const w = new Writer(client, file, seed);
    w.loop = w.run();
    return w;
  }

  /** Stats since the last reset (per outage). */
  reset(): void {
    this.jukebox = 0;
    this.maxCallMs = 0;
  }

  get count(): number {
    return this.acked.length;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const i = this.next;
      const t0 = performance.now();
      let status: number;
      try {
        status = (await this.client.call(P.WRITE, { file: this.file, offset: BigInt(i * CHUNK), count: CHUNK, stable: StableHow.FILE_SYNC, data: chunkData(this.seed, i) })).status;
      } catch (err) {
        // The server went away (a kill or a stop in the test): the writer is done.
        this.otherErrors.push(String(err));
        return;
      }
      this.maxCallMs = Math.max(this.maxCallMs, performance.now() - t0);
      if (status === Nfs3Status.NFS3_OK) {
        this.acked.push(i);
        this.next++;
      } else if (status === Nfs3Status.NFS3ERR_JUKEBOX) {
        this.jukebox++;
        await sleep(200);
      } else {
        this.otherErrors.push(`WRITE ${i}: status ${status}`);
        await sleep(200);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.client.close();
  }
}

/** Reads back every acknowledged chunk of a Writer's file through a new connection. */
export async function verifyAcked(port: number, name: string, seed: number, acked: number[]): Promise<void> {
  const c = await Nfs3Client.connect(port);
  try {
    const root = await c.mount("/");
    const fh = (await c.ok(P.LOOKUP, { what: { dir: root, name: Buffer.from(name) } })).object;
    for (const i of acked) {
      const r = await c.ok(P.READ, { file: fh, offset: BigInt(i * CHUNK), count: CHUNK });
      assert.ok(Buffer.from(r.data).equals(chunkData(seed, i)), `${name}: acknowledged chunk ${i} differs after the outage`);
    }
  } finally {
    c.close();
  }
}
