import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalStore } from "../../src/store/local-store.ts";
import { engineSuite } from "./engine-suite.ts";

engineSuite(
  "the local-directory store",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "zerofs-engine-"));
    const store = new LocalStore(dir);
    return { store, cleanup: async () => { await store.close(); await rm(dir, { recursive: true, force: true }); } };
  },
  { modelOps: 1500, crashTrials: 100 },
);
