/**
 * The informer and the REST client against a fake API server on 127.0.0.1: a watch that ends is
 * resumed from the last resourceVersion, a 410 (as an ERROR event or as the response) relists
 * and reports what was deleted meanwhile, and a dropped connection or a 500 is retried.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { KubeClient } from "../src/kube/client.ts";
import { Informer, type InformerEventType } from "../src/kube/informer.ts";
import { R } from "../src/kube/resources.ts";
import type { KubeObject } from "../src/kube/types.ts";
import { waitFor } from "../../e2e/k8s/wait.ts";

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

const cm = (name: string, rv: string): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns", resourceVersion: rv } });
const line = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;

describe("informer against a fake API server", () => {
  let server: Server;
  let client: KubeClient;
  let handler: Handler = (_q, res) => res.writeHead(500).end();
  const requests: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      requests.push(`${url.searchParams.get("watch") ? "watch" : "list"} rv=${url.searchParams.get("resourceVersion") ?? ""}`);
      handler(req, res, url);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "c", cluster: "fake", user: "u" }],
      currentContext: "c",
    });
    client = new KubeClient(kc);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("relists on 410, reports deletions missed meanwhile, resumes after a clean end and retries errors", async () => {
    requests.length = 0;
    let lists = 0;
    let watches = 0;
    handler = (_req, res, url) => {
      const isWatch = url.searchParams.get("watch") === "true";
      if (!isWatch) {
        lists++;
        const items = lists === 1 ? [cm("a", "10"), cm("b", "11")] : [cm("a", "30")];
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ kind: "ConfigMapList", metadata: { resourceVersion: lists === 1 ? "11" : "30" }, items }));
        return;
      }
      watches++;
      if (watches !== 4) res.writeHead(200, { "content-type": "application/json" });
      if (watches === 1) {
        // An event, a bookmark, then a clean end (server-side timeout).
        res.write(line("ADDED", cm("c", "12")));
        res.end(line("BOOKMARK", { metadata: { resourceVersion: "15" } }));
      } else if (watches === 2) {
        // Resumed from the bookmark; then the history is compacted: 410 as an ERROR event.
        res.end(line("ERROR", { kind: "Status", code: 410, reason: "Expired", message: "too old resource version: 15 (20)" }));
      } else if (watches === 3) {
        // After the relist: the connection drops mid-stream.
        res.write(line("MODIFIED", cm("a", "31")));
        setTimeout(() => res.destroy(), 20);
      } else if (watches === 4) {
        res.writeHead(500);
        res.end(JSON.stringify({ kind: "Status", code: 500, message: "etcd leader changed" }));
      } else {
        // Stay open, quiet.
        res.write(line("MODIFIED", cm("a", "32")));
      }
    };
    const events: string[] = [];
    const restarts: string[] = [];
    const inf = new Informer<KubeObject>(client, R.services, pino({ level: "silent" }), { minBackoffMs: 10, maxBackoffMs: 50, onRestart: (_r, why) => restarts.push(why) });
    inf.on((t: InformerEventType, o) => events.push(`${t} ${o.metadata.name}@${o.metadata.resourceVersion}`));
    inf.start();
    await inf.waitForSync();
    await waitFor("the fifth watch", async () => watches >= 5, { timeoutMs: 5000, intervalMs: 10, describe: async () => `${requests.join(", ")} / ${events.join(", ")} / ${restarts.join(",")}` });
    await waitFor("a@32", async () => inf.get("ns", "a")?.metadata.resourceVersion === "32", { timeoutMs: 5000, intervalMs: 10 });
    await inf.stop();

    assert.deepEqual(requests.slice(0, 6), ["list rv=", "watch rv=11", "watch rv=15", "list rv=", "watch rv=30", "watch rv=31"]);
    assert.ok(events.includes("add c@12"));
    assert.ok(events.includes("delete b@11"), "b vanished while the watch was expired: reported on relist");
    assert.ok(events.includes("delete c@12"));
    assert.ok(events.includes("update a@30"));
    assert.deepEqual(inf.list().map((o) => o.metadata.name), ["a"]);
    assert.deepEqual(restarts.slice(0, 3), ["expired", "error", "error"]);
  });

  it("a 410 response to the watch request relists too", async () => {
    requests.length = 0;
    let watches = 0;
    handler = (_req, res, url) => {
      if (url.searchParams.get("watch") !== "true") {
        res.writeHead(200).end(JSON.stringify({ metadata: { resourceVersion: "5" }, items: [cm("x", "5")] }));
      } else if (++watches === 1) {
        res.writeHead(410).end(JSON.stringify({ kind: "Status", code: 410, reason: "Gone", message: "gone" }));
      } else {
        res.writeHead(200).write(line("BOOKMARK", { metadata: { resourceVersion: "6" } }));
      }
    };
    const inf = new Informer<KubeObject>(client, R.services, pino({ level: "silent" }), { minBackoffMs: 10 });
    inf.start();
    await waitFor("two lists", async () => requests.filter((r) => r.startsWith("list")).length >= 2 && watches >= 2, { timeoutMs: 5000, intervalMs: 10 });
    await inf.stop();
    assert.deepEqual(requests.slice(0, 4), ["list rv=", "watch rv=5", "list rv=", "watch rv=5"]);
  });

  it("client errors name the verb and the object", async () => {
    handler = (_req, res) => res.writeHead(403).end(JSON.stringify({ kind: "Status", code: 403, reason: "Forbidden", message: 'secrets "pw" is forbidden: User "x" cannot get resource "secrets"' }));
    await assert.rejects(client.get(R.secrets, "apps", "pw"), /^KubeApiError: get Secret apps\/pw: HTTP 403 Forbidden: secrets "pw" is forbidden/);
    handler = (req, res) => {
      assert.equal(req.headers["content-type"], "application/apply-patch+yaml");
      res.writeHead(409).end(JSON.stringify({ kind: "Status", code: 409, reason: "Conflict", message: "the object has been modified" }));
    };
    await assert.rejects(client.apply({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d", namespace: "apps" } }), /apply Deployment apps\/d: HTTP 409 Conflict/);
    handler = (_req, res) => res.writeHead(404).end("{}");
    assert.equal(await client.get(R.secrets, "apps", "nope"), undefined);
    assert.equal(await client.delete(R.secrets, "apps", "nope"), false);
  });
});
