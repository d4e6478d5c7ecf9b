/** RPC metric labels stay a fixed, small set whatever numbers clients send (nfs/call-labels.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { callLabels } from "../../src/nfs/call-labels.ts";
import { MOUNT_PROGRAM, MountProc } from "../../src/nfs/mount.ts";
import { NFS_PROGRAM, Nfs3Proc } from "../../src/nfs/nfs3-types.ts";
import { PMAP_PROGRAM, PmapProc } from "../../src/nfs/portmap.ts";
import { Rng } from "../../../test/support/random.ts";

test("implemented procedures are labelled by name", () => {
  for (const [name, n] of Object.entries(Nfs3Proc)) assert.deepEqual(callLabels(NFS_PROGRAM, n), { program: "nfs", procedure: name });
  for (const [name, n] of Object.entries(MountProc)) assert.deepEqual(callLabels(MOUNT_PROGRAM, n), { program: "mount", procedure: name });
  for (const [name, n] of Object.entries(PmapProc)) assert.deepEqual(callLabels(PMAP_PROGRAM, n), { program: "portmap", procedure: name });
});

test("any other program or procedure number is 'other': the label sets are bounded (seeded)", () => {
  const rng = Rng.fromEnv("call labels");
  const seen = new Set<string>();
  const progs = [NFS_PROGRAM, MOUNT_PROGRAM, PMAP_PROGRAM];
  for (let i = 0; i < 20_000; i++) {
    const prog = i % 4 === 3 ? rng.int(0, 2 ** 32 - 1) : progs[i % 3]!;
    const proc = i % 2 === 0 ? rng.int(0, 2 ** 32 - 1) : rng.int(0, 63);
    const l = callLabels(prog, proc);
    seen.add(`${l.program}/${l.procedure}`);
  }
  const implemented = Object.keys(Nfs3Proc).length + Object.keys(MountProc).length + Object.keys(PmapProc).length;
  assert.ok(seen.size <= implemented + 4, `${seen.size} label sets for 20,000 random calls (seed ${rng.seed})`);
  assert.deepEqual(callLabels(NFS_PROGRAM, 22), { program: "nfs", procedure: "other" });
  assert.deepEqual(callLabels(MOUNT_PROGRAM, 2 ** 32 - 1), { program: "mount", procedure: "other" });
  assert.deepEqual(callLabels(100_227, 1), { program: "other", procedure: "other" });
});
