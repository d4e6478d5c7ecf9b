#!/usr/bin/env node
/** Entry point of the `kubectl-zerofs` executable (bundled by operator/plugin/build.ts). */
import { main } from "./cli.ts";

const ac = new AbortController();
process.once("SIGINT", () => ac.abort());
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  // `kubectl zerofs logs -f vol | head`: the reader left; stop quietly.
  if (err.code === "EPIPE") process.exit(0);
});
const code = await main(
  process.argv.slice(2),
  {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    stdin: process.stdin,
    tty: process.stdout.isTTY === true,
  },
  ac.signal,
);
process.exitCode = code;
