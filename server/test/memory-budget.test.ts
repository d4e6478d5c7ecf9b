import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { containerMemoryLimit, memoryCacheBudget } from "../src/config/memory.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe("memory cache budget", () => {
  it("reads the container's limit from cgroup v2 or v1; 'max' and v1's huge number mean none", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zerofs-cgroup-"));
    try {
      assert.equal(containerMemoryLimit(join(dir, "missing")), undefined, "no cgroup files: no limit");
      const v2 = join(dir, "v2");
      await mkdir(v2);
      await writeFile(join(v2, "memory.max"), "2147483648\n");
      assert.equal(containerMemoryLimit(v2), 2 * GiB);
      await writeFile(join(v2, "memory.max"), "max\n");
      assert.equal(containerMemoryLimit(v2), undefined);
      const v1 = join(dir, "v1");
      await mkdir(join(v1, "memory"), { recursive: true });
      await writeFile(join(v1, "memory", "memory.limit_in_bytes"), "9223372036854771712\n");
      assert.equal(containerMemoryLimit(v1), undefined, "v1 reports no limit as a page-rounded 2^63");
      await writeFile(join(v1, "memory", "memory.limit_in_bytes"), "1073741824\n");
      assert.equal(containerMemoryLimit(v1), GiB);
      await writeFile(join(v1, "memory", "memory.limit_in_bytes"), "garbage\n");
      assert.equal(containerMemoryLimit(v1), undefined, "an unreadable value is no limit, not a crash");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("defaults to 25% of the container limit, else 25% of the machine up to 4 GiB, split 1:3 blocks:extents", () => {
    const limited = memoryCacheBudget(undefined, 4 * GiB, 64 * GiB);
    assert.deepEqual(limited, { totalBytes: GiB, blockCacheBytes: 256 * MiB, extentCacheBytes: 768 * MiB, source: "container limit", containerLimitBytes: 4 * GiB });
    const unlimited = memoryCacheBudget(undefined, undefined, 64 * GiB);
    assert.equal(unlimited.totalBytes, 4 * GiB);
    assert.equal(memoryCacheBudget(undefined, undefined, 8 * GiB).totalBytes, 2 * GiB);
    assert.equal(unlimited.source, "default");
    assert.equal(memoryCacheBudget(undefined, undefined, GiB).totalBytes, 256 * MiB, "a small machine gets a quarter of its memory");
    assert.equal(memoryCacheBudget(undefined, 32 * MiB, 64 * GiB).totalBytes, 16 * MiB, "never below 16 MiB");
    const b = memoryCacheBudget(undefined, 3 * GiB + 5, 64 * GiB);
    assert.equal(b.blockCacheBytes + b.extentCacheBytes, b.totalBytes, "the split adds up to the budget");
  });

  it("the setting wins over the limit; more than half the limit is warned about", () => {
    const s = memoryCacheBudget(100 * MiB, 4 * GiB, 64 * GiB);
    assert.deepEqual([s.totalBytes, s.blockCacheBytes, s.extentCacheBytes, s.source, s.warning], [100 * MiB, 25 * MiB, 75 * MiB, "setting", undefined]);
    const big = memoryCacheBudget(3 * GiB, 4 * GiB, 64 * GiB);
    assert.equal(big.totalBytes, 3 * GiB);
    assert.match(big.warning ?? "", /ZEROFS_MEMORY_CACHE_MB \(3072 MiB\) is more than half of the container's memory limit \(4096 MiB\)/);
  });
});
