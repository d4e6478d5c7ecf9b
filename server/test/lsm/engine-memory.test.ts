import { MemoryStore } from "../../src/store/memory-store.ts";
import { engineSuite } from "./engine-suite.ts";

engineSuite("the in-memory store", async () => ({ store: new MemoryStore(), cleanup: async () => undefined }), {
  modelOps: 4000,
  crashTrials: 300,
});
