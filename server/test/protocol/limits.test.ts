/**
 * Resource limits of the real `zerofs` command under abuse (issue 15, "memory and connections
 * are unbounded"), scaled down to run in seconds: each abuse must leave the server's peak RSS
 * (VmHWM from /proc/<pid>/status) within a stated bound above its baseline, end with the abusers
 * closed by the server, and never stop a well-behaved client's GETATTRs from being answered.
 *
 * Settings for the test server: a 32 MiB buffer budget, 40 connections at most, 2 s idle and
 * record timeouts, 3 s stall timeout. Without the limits each abuse below grows RSS by
 * hundreds of MB (every reply or partial record held) and no abuser is ever closed.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateMode, Nfs3Proc as P, StableHow } from "../../src/nfs/nfs3-types.ts";
import { encodeArgs } from "../../../test/support/nfs/nfs3-client-codec.ts";
import { Nfs3Client, sattr } from "../../../test/support/nfs/nfs3-client.ts";
import { authSys, encodeCall, frame } from "../../../test/support/nfs/rpc-client.ts";
import { startZerofs, type ZerofsProcess } from "../../../test/support/zerofs-process.ts";

const MiB = 1024 * 1024;
const BUDGET = 32 * MiB;
const MAX_CONNECTIONS = 40;

/** Resident and peak resident set of a process, in MiB. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** Sockets, timers and clients a test opened: released after each test, pass or fail. */
const opened: { destroy(): void }[] = [];

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1" }, () => resolve(s));
    opened.push(s);
    s.once("error", reject);
  });
}

/**
 * Resolves when the socket has closed. `read`: keep reading (and discarding) so that the
 * server's FIN or RST is seen; a socket that must not read is closed by the test itself.
 */
function closedByServer(s: Socket, read = true): Promise<void> {
  return new Promise((resolve) => {
    s.on("error", () => undefined);
    if (s.destroyed) return resolve();
    s.once("close", () => resolve());
    if (read) s.on("data", () => undefined);
  });
}

async function metric(s: ZerofsProcess, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

async function within<T>(what: string, p: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(50);
  }
}

/**
 * A well-behaved client: GETATTR every 50 ms; every call must be answered within 5 s. Like a
 * kernel client it reconnects if the server closed its connection while it was idle (the
 * connection cap may pick it as the longest idle). stop() returns how many were answered.
 */
function wellBehaved(port: number, root: Buffer): { stop(): Promise<{ answered: number; slowestMs: number; reconnects: number }> } {
  let running = true;
  let answered = 0;
  let slowestMs = 0;
  let reconnects = 0;
  let c: Nfs3Client | undefined;
  opened.push({
    destroy() {
      running = false;
      c?.close();
    },
  });
  const loop = (async () => {
    c = await Nfs3Client.connect(port);
    try {
      while (running) {
        const t0 = performance.now();
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`a well-behaved GETATTR was not answered within 5 s (after ${answered} answers)`)), 5000);
        });
        try {
          await Promise.race([c.ok(P.GETATTR, { object: root }), timeout]);
        } catch (err) {
          if (!(err instanceof Error && /connection closed/.test(err.message))) throw err;
          reconnects++;
          c.close();
          c = await Nfs3Client.connect(port);
          continue;
        } finally {
          clearTimeout(timer);
        }
        slowestMs = Math.max(slowestMs, performance.now() - t0);
        answered++;
        await sleep(50);
      }
    } finally {
      c.close();
    }
  })();
  loop.catch(() => undefined); // reported by stop(); never an unhandled rejection
  return {
    async stop() {
      running = false;
      await loop;
      return { answered, slowestMs, reconnects };
    },
  };
}

describe("zerofs under abuse: bounded memory and connections", () => {
  let dir: string;
  let s: ZerofsProcess;
  let root: Buffer;
  let file: Buffer;
  let baseline: number;
  const figures: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-limits-"));
    s = await startZerofs({
      url: join(dir, "vol"),
      env: {
        // Explicit, so the test does not depend on the export defaults.
        ZEROFS_SQUASH: "none",
        ZEROFS_MAX_BUFFERED_BYTES: String(BUDGET),
        ZEROFS_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
        ZEROFS_IDLE_TIMEOUT_SECONDS: "2",
        ZEROFS_RECORD_TIMEOUT_SECONDS: "2",
        ZEROFS_STALL_TIMEOUT_SECONDS: "3",
      },
    });
    const c = await Nfs3Client.connect(s.nfsPort);
    root = await c.mount("/");
    file = (await c.ok(P.CREATE, { where: { dir: root, name: Buffer.from("one-mib") }, how: { mode: CreateMode.GUARDED, attributes: sattr({ mode: 0o644 }) } })).obj!;
    await c.ok(P.WRITE, { file, offset: 0n, count: MiB, stable: StableHow.FILE_SYNC, data: Buffer.alloc(MiB, 0x5a) });
    // Warm up the read path (block cache, reply buffers) before taking the baseline.
    for (let i = 0; i < 8; i++) await c.ok(P.READ, { file, offset: 0n, count: MiB });
    c.close();
    await sleep(500);
    baseline = memory(s.proc.pid!).rss;
  });

  afterEach(() => {
    for (const r of opened.splice(0)) r.destroy();
  });

  after(async () => {
    await s?.stop();
    await rm(dir, { recursive: true, force: true });
    console.log(`RSS figures (MiB): baseline ${baseline.toFixed(0)}; ${figures.join("; ")}`);
  });

  it("clients that send READ(1 MiB) calls and never read the replies pin at most the budget, and are closed when stalled", async () => {
    const good = wellBehaved(s.nfsPort, root);
    const hogs = await Promise.all(Array.from({ length: 4 }, () => openSocket(s.nfsPort)));
    const before = memory(s.proc.pid!);
    const args = encodeArgs(P.READ, { file, offset: 0n, count: MiB });
    const cred = authSys({ uid: 0, gid: 0 });
    for (const [h, sock] of hogs.entries()) {
      sock.pause(); // never read a reply
      // 128 calls (the per-connection in-flight limit): 128 MiB of replies per connection if unbounded.
      sock.write(Buffer.concat(Array.from({ length: 128 }, (_, i) => frame(encodeCall(0x1000_0000 + h * 1000 + i, 100003, 3, P.READ, args, { cred })))));
    }
    const closed = hogs.map((h) => closedByServer(h, false));
    await sleep(1500);
    const during = memory(s.proc.pid!);
    figures.push(`reply hogs: rss ${before.rss.toFixed(0)} -> ${during.rss.toFixed(0)}, peak ${during.hwm.toFixed(0)}`);
    // Budget (32 MiB) + one exempt reply per connection + allocator slack; unbounded is > 512 MiB.
    assert.ok(during.hwm - baseline < 160, `peak RSS ${during.hwm.toFixed(0)} MiB vs baseline ${baseline.toFixed(0)} MiB`);
    // The hogs stop being served once their replies are unread, and are closed after the stall timeout.
    await until("the server closes the 4 stalled connections", async () => (await metric(s, "zerofs_rpc_connections_closed_total", '{reason="stalled"}')) >= 4, 15_000);
    for (const h of hogs) h.destroy();
    await Promise.all(closed);
    const g = await good.stop();
    const peak = memory(s.proc.pid!).hwm;
    figures.push(`after close: peak ${peak.toFixed(0)}; good client ${g.answered} answers, slowest ${g.slowestMs.toFixed(0)} ms`);
    assert.ok(g.answered >= 5, `the well-behaved client got ${g.answered} answers`);
    assert.ok(peak - baseline < 160, `peak RSS ${peak.toFixed(0)} MiB vs baseline ${baseline.toFixed(0)} MiB`);
  });

  it("connections holding 4 MiB of an unfinished record are paused at the budget and closed at the record timeout", async () => {
    const good = wellBehaved(s.nfsPort, root);
    const n = 30; // 120 MiB of partial records if unbounded
    const socks = await Promise.all(Array.from({ length: n }, () => openSocket(s.nfsPort)));
    const before = memory(s.proc.pid!);
    const closed = socks.map((x) => closedByServer(x));
    const header = Buffer.alloc(4);
    header.writeUInt32BE((0x8000_0000 | (4 * MiB + 1000)) >>> 0);
    for (const sock of socks) {
      sock.write(header);
      sock.write(Buffer.alloc(4 * MiB, 0x42)); // never the last 1000 bytes
    }
    await sleep(1500);
    const during = memory(s.proc.pid!);
    const buffered = await metric(s, "zerofs_rpc_buffered_bytes", '{kind="request"}');
    figures.push(`partial records: rss ${before.rss.toFixed(0)} -> ${during.rss.toFixed(0)}, peak ${during.hwm.toFixed(0)}, buffered ${(buffered / MiB).toFixed(1)} MiB`);
    assert.ok(during.hwm - baseline < 160, `peak RSS ${during.hwm.toFixed(0)} MiB vs baseline ${baseline.toFixed(0)} MiB`);
    assert.ok(buffered < BUDGET + n * 256 * 1024, `${buffered} request bytes buffered`);
    await within(`the server closes all ${n} connections`, Promise.all(closed), 15_000);
    const g = await good.stop();
    const peak = memory(s.proc.pid!).hwm;
    figures.push(`after close: peak ${peak.toFixed(0)}; good client ${g.answered} answers, slowest ${g.slowestMs.toFixed(0)} ms`);
    assert.ok((await metric(s, "zerofs_rpc_connections_closed_total", '{reason="record_timeout"}')) >= n);
    assert.ok(g.answered >= 5, `the well-behaved client got ${g.answered} answers`);
    assert.ok(peak - baseline < 160, `peak RSS ${peak.toFixed(0)} MiB vs baseline ${baseline.toFixed(0)} MiB`);
  });

  it("idle connections are capped (the longest-idle evicted) and time out; a 1 byte per 300 ms trickle is closed", async () => {
    const good = wellBehaved(s.nfsPort, root);
    await sleep(200);
    const before = memory(s.proc.pid!);
    const trickle = await openSocket(s.nfsPort);
    const trickleClosed = closedByServer(trickle);
    const call = frame(encodeCall(7, 100003, 3, P.NULL, Buffer.alloc(0)));
    let sent = 0;
    const dripper = setInterval(() => {
      if (!trickle.destroyed && sent < call.length) trickle.write(call.subarray(sent, ++sent));
    }, 300);
    opened.push({ destroy: () => clearInterval(dripper) });
    // Let the trickle start its record (so it is not idle: idle ones are what the cap evicts).
    await sleep(500);
    // 5x the connection cap, idle.
    const idle: Socket[] = [];
    for (let i = 0; i < 5 * MAX_CONNECTIONS; i++) {
      const sock = await openSocket(s.nfsPort).catch(() => undefined);
      if (sock !== undefined) idle.push(sock);
    }
    const idleClosed = idle.map((x) => closedByServer(x));
    const open = await metric(s, "zerofs_rpc_connections_open");
    // Evicted sockets see the server's FIN once they read; well before the 2 s idle timeout.
    await until(`at most ${MAX_CONNECTIONS} idle connections open`, () => idle.filter((x) => !x.destroyed).length <= MAX_CONNECTIONS, 1500).catch(() => undefined);
    const stillOpen = idle.filter((x) => !x.destroyed).length;
    assert.ok(open <= MAX_CONNECTIONS, `${open} connections open with a cap of ${MAX_CONNECTIONS}`);
    assert.ok(stillOpen <= MAX_CONNECTIONS, `${stillOpen} of the idle connections still open`);
    const evicted = await metric(s, "zerofs_rpc_connections_closed_total", '{reason="evicted"}');
    assert.ok(evicted >= 100, `${evicted} connections evicted`);
    // The rest time out (2 s idle), and so does the trickle (2 s per record).
    await within("the idle connections time out", Promise.all(idleClosed), 15_000);
    await within("the trickle is closed", trickleClosed, 15_000);
    clearInterval(dripper);
    assert.ok(sent < call.length, "the trickle was closed before its record completed");
    const g = await good.stop();
    const peak = memory(s.proc.pid!).hwm;
    figures.push(`idle + trickle: rss ${before.rss.toFixed(0)} -> peak ${peak.toFixed(0)}, ${open} open at most; good client ${g.answered} answers, slowest ${g.slowestMs.toFixed(0)} ms, ${g.reconnects} reconnects`);
    assert.ok((await metric(s, "zerofs_rpc_connections_closed_total", '{reason="idle"}')) >= 1);
    assert.ok((await metric(s, "zerofs_rpc_connections_closed_total", '{reason="record_timeout"}')) >= 31);
    assert.ok(g.answered >= 5, `the well-behaved client got ${g.answered} answers`);
    assert.ok(peak - baseline < 160, `peak RSS ${peak.toFixed(0)} MiB vs baseline ${baseline.toFixed(0)} MiB`);
  });
});
