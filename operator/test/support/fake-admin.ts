/**
 * A tiny in-memory stand-in for a ZeroFS server's admin API (/v1/directories, as the interface
 * document describes it), for tests of the operator's client and provisioner without a server.
 * Usage can be set by the test (there are no files behind it). It records every request.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeDirectory {
  name: string;
  quota: { bytes: number | null; inodes: number | null };
  usage: { bytes: number; inodes: number };
  projectId: number;
}

export interface FakeAdmin {
  url: string;
  dirs: Map<string, FakeDirectory>;
  requests: string[];
  /** Tokens the server accepts; a function so it can follow Secrets the operator created. */
  token: () => string | string[] | Promise<string | string[]>;
  /** Next responses forced to this status (then back to normal). */
  failNext(status: number, times?: number): void;
  /** PUTs wait (unanswered) until release(): a request in flight when its caller stops. */
  holdPuts: boolean;
  release(): void;
  close(): Promise<void>;
}

const NAME_RE = /^[A-Za-z0-9._-]{1,200}$/;

export async function startFakeAdmin(token: FakeAdmin["token"]): Promise<FakeAdmin> {
  const dirs = new Map<string, FakeDirectory>();
  const requests: string[] = [];
  let nextProject = 1;
  let forced: { status: number; times: number } | undefined;
  const held: (() => void)[] = [];
  const info = (d: FakeDirectory) => ({ name: d.name, path: `/${d.name}`, projectId: d.projectId, quota: d.quota, usage: d.usage });
  const fake: FakeAdmin = {
    url: "",
    dirs,
    requests,
    token,
    failNext(status, times = 1) {
      forced = { status, times };
    },
    holdPuts: false,
    release() {
      fake.holdPuts = false;
      for (const w of held.splice(0)) w();
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const send = (status: number, body: unknown) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        };
        requests.push(`${req.method} ${req.url}`);
        const valid = [await fake.token()].flat().map((t) => `Bearer ${t.trim()}`);
        if (!valid.includes(req.headers.authorization ?? "")) return send(401, { error: "bad token" });
        if (forced && forced.times > 0) {
          forced.times--;
          return send(forced.status, { error: "forced failure" });
        }
        const m = /^\/v1\/directories(?:\/([^/]+))?$/.exec(req.url ?? "");
        if (!m) return send(404, { error: "not found" });
        const name = m[1];
        if (name === undefined) {
          if (req.method !== "GET") return send(405, { error: "method" });
          return send(200, [...dirs.values()].map(info));
        }
        if (!NAME_RE.test(name) || name === "." || name === "..") return send(400, { error: `bad name ${name}` });
        const d = dirs.get(name);
        if (req.method === "GET") return d ? send(200, info(d)) : send(404, { error: `${name} not found` });
        if (req.method === "DELETE") {
          if (!d) return send(404, { error: `${name} not found` });
          dirs.delete(name);
          return send(202, { name });
        }
        if (req.method === "PUT") {
          if (fake.holdPuts) await new Promise<void>((r) => held.push(r));
          let body: { quota?: { bytes?: number | null; inodes?: number | null } };
          try {
            body = JSON.parse(Buffer.concat(chunks).toString()) as typeof body;
          } catch {
            return send(400, { error: "body is not JSON" });
          }
          const quota = { bytes: body.quota?.bytes ?? null, inodes: body.quota?.inodes ?? null };
          const cur = d ?? { name, quota, usage: { bytes: 0, inodes: 1 }, projectId: nextProject++ };
          cur.quota = quota;
          dirs.set(name, cur);
          return send(200, info(cur));
        }
        return send(405, { error: "method" });
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
