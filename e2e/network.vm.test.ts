// The VM's network is restricted: the guest reaches the forwarded host loopback ports and
// nothing else (not the host's other ports, not the outside world).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { test } from "node:test";
import { runGuest } from "./vm/vm.ts";

async function listener(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.end();
  });
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("no port");
  return { server, port: addr.port, connections: () => n };
}

test("the guest reaches only the forwarded host ports", { timeout: 10 * 60_000 }, async () => {
  const open = await listener();
  const closed = await listener();
  try {
    const r = await runGuest({ script: "network", forwardPorts: [open.port], env: { OPEN_PORT: open.port, CLOSED_PORT: closed.port }, timeoutMs: 8 * 60_000 });
    assert.match(r.console, /unreachable: 8\.8\.8\.8 53/);
    assert.ok(open.connections() >= 1, "the forwarded port was reached through the relay");
    assert.equal(closed.connections(), 0, "a listening but not forwarded host port saw no connection");
  } finally {
    open.server.close();
    closed.server.close();
  }
});
