/**
 * A slow segment GC pass logs progress lines (segments swept, extent records scanned, rates)
 * and a summary with what it deleted; a quick one logs its summary at debug only, so that a
 * pass every minute does not fill the log (observability/progress.ts).
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { it } from "node:test";
import { pino } from "pino";
import { StableHow } from "../../src/fs/types.ts";
import { Rng } from "../../../test/support/random.ts";
import { SMALL_DB, root, withFs } from "./helpers.ts";

function capture(level: string): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level }, sink), lines };
}

async function overwriteGenerations(fs: import("../../src/fs/zerofs.ts").ZeroFs): Promise<void> {
  const f = (await fs.create(root, fs.rootIno, "f", { mode: "guarded" })).attrs.ino;
  for (let round = 0; round < 4; round++) {
    const data = new Rng(20 + round).bytes(1 << 20);
    await fs.write(root, f, 0, data, StableHow.UNSTABLE);
    await fs.commit(f);
  }
}

for (const slow of [true, false]) {
  it(slow ? "a slow pass logs progress lines and an info summary" : "a quick pass logs its summary at debug only", () => {
    const { log, lines } = capture("debug");
    return withFs(
      async ({ fs, db }) => {
        await overwriteGenerations(fs);
        if (slow) {
          // A pass over a few in-memory segments can finish within the 1 ms interval: make it
          // slow for sure (2 ms per extent record scanned), not by luck of the machine's speed.
          const scan = db.scan.bind(db);
          db.scan = async function* (from?: Buffer, to?: Buffer) {
            for await (const e of scan(from, to)) {
              await new Promise((r) => setTimeout(r, 2));
              yield e;
            }
          };
        }
        await fs.segmentGc!.runPass();
        const gc = lines.filter((l) => l.task === "segment-gc");
        const running = gc.filter((l) => l.progress === "running");
        const done = gc.filter((l) => l.progress === "done");
        assert.equal(done.length, 1, JSON.stringify(gc));
        const s = done[0]!;
        assert.equal(s.unit, "segments");
        assert.ok((s.total as number) > 4 && s.done === s.total, JSON.stringify(s));
        assert.ok((s.deleted as number) > 0, "the pass deleted the dead generations");
        assert.ok((s.records as number) > 0, "extent records scanned");
        if (slow) {
          assert.ok(running.length >= 1, "progress lines while the pass runs");
          assert.equal(s.level, 30, "info");
        } else {
          assert.equal(running.length, 0);
          assert.equal(s.level, 20, "debug");
        }
      },
      { segmentGcOptions: { intervalMs: 0, graceMs: 0, smallSegmentBytes: 0, progressIntervalMs: slow ? 1 : 60_000 }, logger: log },
      { ...SMALL_DB, segmentTargetBytes: 128 * 1024 },
    );
  });
}
