import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { libnfsSuite } from "./libnfs-suite.ts";

libnfsSuite("the embedded default (local directory)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "zerofs-vol-"));
  return { options: { url: dir }, storageDirs: [dir], cleanup: () => rm(dir, { recursive: true, force: true }) };
});
