/**
 * One guest TCP connection forwarded to a host loopback port. qemu's user network runs this
 * (`guestfwd=...-cmd:`) once per connection the guest opens to a forwarded address, with the
 * connection as stdin/stdout — and as stderr too, so this must never print anything (node runs
 * it with --no-warnings, and every error just ends the connection).
 *
 * Usage: node --no-warnings guest-relay.ts <host> <port>
 */
import { connect, Socket } from "node:net";

const host = process.argv[2] ?? "127.0.0.1";
const port = Number(process.argv[3]);
const guest = new Socket({ fd: 0, readable: true, writable: true });
const upstream = connect({ host, port });
let ended = false;
const end = (): void => {
  if (ended) return;
  ended = true;
  guest.destroy();
  upstream.destroy();
  process.exit(0);
};
for (const s of [guest, upstream]) {
  s.on("error", end);
  s.on("close", end);
}
guest.pipe(upstream);
upstream.pipe(guest);
