/**
 * S3Store reports each attempt an S3 endpoint refused for its request rate (503 SlowDown, 429)
 * through onThrottled, also when the SDK's retries then succeed: that is what
 * zerofs_store_throttled_total and the chart's ZeroFSObjectStoreThrottled alert count. A fake
 * endpoint (node:http) throttles the first attempts of each request.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { isThrottle, S3Store } from "../src/store/s3-store.ts";

describe("S3Store throttling observer", () => {
  let server: Server;
  let endpoint: string;
  /** Attempts still to be throttled, and how. */
  let plan: { status: number; code: string }[] = [];
  let requests = 0;

  before(async () => {
    server = createServer((req, res) => {
      requests++;
      req.resume();
      req.on("end", () => {
        const t = plan.shift();
        if (t) {
          res.writeHead(t.status, { "content-type": "application/xml" }).end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${t.code}</Code><Message>Please reduce your request rate.</Message></Error>`);
          return;
        }
        res.writeHead(200, { etag: '"abc"', "content-length": "0" }).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const store = (onThrottled: () => void, maxAttempts = 5) =>
    new S3Store({ bucket: "b", prefix: "p", endpoint, allowHttp: true, region: "us-east-1", accessKeyId: "k", secretAccessKey: "s", maxAttempts, onThrottled });

  it("counts every throttled attempt of a request that then succeeds", async () => {
    let n = 0;
    plan = [{ status: 503, code: "SlowDown" }, { status: 429, code: "TooManyRequests" }];
    requests = 0;
    const s = store(() => n++);
    try {
      assert.deepEqual(await s.put("k1", Buffer.from("x")), { etag: '"abc"' });
    } finally {
      await s.close();
    }
    assert.equal(requests, 3, "two throttled attempts, then the one that succeeded");
    assert.equal(n, 2);
  });

  it("counts the attempts of a request that stays throttled, and not other errors", async () => {
    let n = 0;
    plan = [{ status: 503, code: "SlowDown" }, { status: 503, code: "SlowDown" }, { status: 403, code: "AccessDenied" }];
    const s = store(() => n++, 2);
    try {
      await assert.rejects(s.put("k2", Buffer.from("x")), /503/);
      assert.equal(n, 2);
      await assert.rejects(s.put("k3", Buffer.from("x")), /403/);
      assert.equal(n, 2, "AccessDenied is no throttling");
    } finally {
      await s.close();
    }
  });

  it("isThrottle: 429, 503 and throttling error names; not 500 or 403", () => {
    const e = (status: number | undefined, name?: string) => ({ name, $metadata: { httpStatusCode: status } });
    assert.ok(isThrottle(e(503, "SlowDown")));
    assert.ok(isThrottle(e(429)));
    assert.ok(isThrottle(e(400, "ThrottlingException")));
    assert.ok(!isThrottle(e(500, "InternalError")));
    assert.ok(!isThrottle(e(403, "AccessDenied")));
    assert.ok(!isThrottle(new Error("ECONNRESET")));
  });
});
