import { MemoryStore } from "../src/store/memory-store.ts";
import { storeConformance } from "./store-conformance.ts";

storeConformance("MemoryStore", async () => ({ store: new MemoryStore(), cleanup: async () => {} }));
