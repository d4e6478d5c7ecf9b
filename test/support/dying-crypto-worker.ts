/** A crypto worker that dies on its first batch (server/test/crypto-workers.test.ts). */
import { parentPort } from "node:worker_threads";

parentPort?.on("message", (m: { type: string }) => {
  if (m.type === "batch") process.exit(3);
});
