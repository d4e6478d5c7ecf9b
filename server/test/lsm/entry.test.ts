import assert from "node:assert/strict";
import { test } from "node:test";
import { compareKeys } from "../../src/lsm/entry.ts";
import { Rng } from "../../../test/support/random.ts";

test("compareKeys orders keys exactly as memcmp (Buffer.compare), short and long, with shared prefixes", () => {
  const rng = Rng.fromEnv("compareKeys");
  const prefix = rng.bytes(120);
  for (let i = 0; i < 20_000; i++) {
    // Keys share a random-length prefix so that differences fall at every position, past the
    // JavaScript loop's 64-byte limit too; some are prefixes of others.
    const make = (): Buffer => Buffer.concat([prefix.subarray(0, rng.int(0, 100)), rng.bytes(rng.int(0, 3)).map((x) => (rng.chance(0.5) ? x : x & 1))]);
    const a = make();
    const b = rng.chance(0.1) ? Buffer.from(a) : make();
    assert.equal(compareKeys(a, b), Buffer.compare(a, b), `${a.toString("hex")} vs ${b.toString("hex")}`);
  }
});
