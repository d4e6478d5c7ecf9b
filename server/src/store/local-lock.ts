/**
 * Per-key write locks for the local store that also exclude other processes: a lock is a file
 * published with link(2) (atomic create-if-absent, with its content already complete) naming
 * the holder. A lock is broken only when its holder is provably gone: same host and boot, and
 * the pid is dead or now belongs to a different process (pid reuse is the norm in containers,
 * where every incarnation of the server may be pid 1). A holder on another host is presumed
 * dead only after `staleMs`, since its liveness cannot be checked.
 */
import { createHash, randomBytes } from "node:crypto";
import { link, mkdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DIR_MODE, FILE_MODE } from "./file-modes.ts";

interface Holder {
  host: string;
  boot: string;
  pid: number;
  /** Process start time in clock ticks since boot (/proc/<pid>/stat field 22), "" off Linux. */
  start: string;
  /** Random per process: tells this process from an earlier one that had the same pid. */
  nonce: string;
}

const NONCE = randomBytes(8).toString("hex");
const BREAK_LOCK_STALE_MS = 5_000;

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return fallback;
  }
}

async function processStart(pid: number | "self"): Promise<string> {
  const s = await readOr(`/proc/${pid}/stat`, "");
  // The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
  return s.slice(s.lastIndexOf(")") + 2).split(" ")[19] ?? "";
}

let selfPromise: Promise<Holder> | undefined;
function self(): Promise<Holder> {
  selfPromise ??= (async () => ({
    host: hostname(),
    boot: await readOr("/proc/sys/kernel/random/boot_id", ""),
    pid: process.pid,
    start: await processStart("self"),
    nonce: NONCE,
  }))();
  return selfPromise;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function parseHolder(text: string): Holder | null {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    if (typeof h.host === "string" && typeof h.boot === "string" && typeof h.pid === "number" && typeof h.start === "string" && typeof h.nonce === "string") {
      return h as Holder;
    }
  } catch {
    // falls through: unparseable (e.g. truncated by a power loss)
  }
  return null;
}

async function holderGone(h: Holder | null, ageMs: number, staleMs: number): Promise<boolean> {
  const me = await self();
  if (h === null || h.host !== me.host) return ageMs > staleMs;
  if (h.boot !== me.boot) return true;
  if (h.pid === me.pid) return h.nonce !== me.nonce;
  if (!pidAlive(h.pid)) return true;
  if (h.start === "") return false;
  const now = await processStart(h.pid);
  return now !== "" && now !== h.start;
}

export class KeyLocks {
  readonly #dir: string;
  readonly #timeoutMs: number;
  readonly #staleMs: number;
  /** In-process queue per key, so this process's own writers wait without polling the file. */
  readonly #queues = new Map<string, Promise<unknown>>();
  #dirReady: Promise<unknown> | undefined;
  #counter = 0;

  constructor(dir: string, timeoutMs: number, staleMs = 30_000) {
    this.#dir = dir;
    this.#timeoutMs = timeoutMs;
    this.#staleMs = staleMs;
  }

  /** Runs `fn` holding `key`'s lock. `mkError` turns a lock failure into the caller's error type. */
  async withLock<T>(key: string, mkError: (message: string) => Error, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(key) ?? Promise.resolve();
    const run = prev.then(async () => {
      const lockPath = await this.#acquire(key, mkError);
      try {
        return await fn();
      } finally {
        await unlink(lockPath).catch(() => undefined);
      }
    });
    const tail = run.catch(() => undefined);
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }

  async #acquire(key: string, mkError: (message: string) => Error): Promise<string> {
    const lockPath = join(this.#dir, `${createHash("sha256").update(key).digest("hex").slice(0, 40)}.lock`);
    const me = await self();
    const staging = `${lockPath}.${NONCE}-${++this.#counter}.new`;
    try {
      this.#dirReady ??= mkdir(this.#dir, { recursive: true, mode: DIR_MODE }).catch((err: unknown) => {
        this.#dirReady = undefined;
        throw err;
      });
      await this.#dirReady;
      await writeFile(staging, JSON.stringify(me), { flag: "wx", mode: FILE_MODE });
    } catch (err) {
      throw mkError(`cannot create lock file ${staging}: ${(err as Error).message}`);
    }
    try {
      const deadline = Date.now() + this.#timeoutMs;
      for (let attempt = 0; ; attempt++) {
        try {
          await link(staging, lockPath);
          return lockPath;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw mkError(`cannot take lock ${lockPath}: ${(err as Error).message}`);
        }
        const holder = await this.#breakIfStale(lockPath);
        if (Date.now() > deadline) {
          throw mkError(`timed out after ${this.#timeoutMs} ms waiting for lock ${lockPath} held by ${holder}`);
        }
        if (holder !== "") await sleep(Math.min(20, 1 + attempt) * (0.5 + Math.random()));
      }
    } finally {
      await unlink(staging).catch(() => undefined);
    }
  }

  /** Removes the lock if its holder is gone; returns the holder's description ("" if none). */
  async #breakIfStale(lockPath: string): Promise<string> {
    let text: string;
    let ageMs: number;
    try {
      [text, ageMs] = await Promise.all([readFile(lockPath, "utf8"), stat(lockPath).then((s) => Date.now() - s.mtimeMs)]);
    } catch {
      return ""; // released meanwhile
    }
    const h = parseHolder(text);
    const who = h ? `pid ${h.pid} on ${h.host}` : "an unknown process";
    if (!(await holderGone(h, ageMs, this.#staleMs))) return who;
    // Breakers take a second lock so that one cannot delete a fresh lock that another breaker's
    // successor has just taken: while we hold it, the stale content can only be replaced by us.
    const breakPath = `${lockPath}.break`;
    try {
      await writeFile(breakPath, NONCE, { flag: "wx", mode: FILE_MODE });
    } catch {
      const st = await stat(breakPath).catch(() => null);
      if (st && Date.now() - st.mtimeMs > BREAK_LOCK_STALE_MS) await unlink(breakPath).catch(() => undefined);
      return who;
    }
    try {
      if ((await readFile(lockPath, "utf8").catch(() => null)) === text) await unlink(lockPath).catch(() => undefined);
    } finally {
      await unlink(breakPath).catch(() => undefined);
    }
    return "";
  }
}
