import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { ObjectStoreError, StoreConfigError } from "../src/store/errors.ts";
import { openStore } from "../src/store/index.ts";
import { S3Store } from "../src/store/s3-store.ts";
import { parseS3Url } from "../src/store/s3-url.ts";
import { createS3StoreForTest, startVersitygw, type Versitygw } from "../../test/support/versitygw.ts";
import { storeConformance } from "./store-conformance.ts";

let vgw: Versitygw | undefined;
let prefixCounter = 0;

before(async () => {
  vgw = await startVersitygw();
});
after(async () => {
  await vgw?.stop();
});

function gateway(): Versitygw {
  if (!vgw) throw new Error("versitygw is not running (before hook failed)");
  return vgw;
}

// Each test gets its own prefix in the one bucket, so tests never see each other's objects.
storeConformance("S3Store on versitygw", async () => ({
  store: createS3StoreForTest(gateway(), `conformance/t${++prefixCounter}`),
  cleanup: async () => {},
}));

describe("S3Store specifics", () => {
  it("uploads carry one integrity check: no SDK CRC32; the SigV4 payload hash only when not unsigned (https default)", async () => {
    for (const unsignedPayload of [true, false]) {
      const seen: Record<string, string>[] = [];
      const store = createS3StoreForTest(gateway(), `integrity/${unsignedPayload}-${++prefixCounter}`, { unsignedPayload, observeRequest: (h) => seen.push(h) });
      const body = Buffer.from("sealed bytes ".repeat(1000));
      await store.put("sst/1", body);
      await store.putIfAbsent("wal/1", body);
      assert.ok((await store.get("sst/1")).equals(body), "the server accepted and stored the body");
      assert.ok((await store.get("wal/1", { offset: 13, length: 100 })).equals(body.subarray(13, 113)));
      const puts = seen.filter((h) => h["content-length"] === String(body.length));
      assert.equal(puts.length, 2, "both uploads observed");
      for (const h of puts) {
        assert.ok(h.authorization?.startsWith("AWS4-HMAC-SHA256"), "still signed");
        assert.equal(Object.keys(h).filter((n) => n.startsWith("x-amz-checksum-") || n === "x-amz-sdk-checksum-algorithm").length, 0, `no SDK checksum header: ${Object.keys(h).join(",")}`);
        if (unsignedPayload) assert.equal(h["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
        else assert.match(h["x-amz-content-sha256"] ?? "", /^[0-9a-f]{64}$/, "plain http keeps the signed payload hash");
      }
      await store.close();
    }
    assert.equal(new S3Store({ bucket: "b", prefix: "p", region: "us-east-1", endpoint: "https://127.0.0.1:9" }) instanceof S3Store, true);
  });


  it("bodies are read straight into one buffer of their Content-Length; large ones in shared memory for the crypto workers", async () => {
    const store = createS3StoreForTest(gateway(), `bodies/${++prefixCounter}`);
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    await store.put("seg/1", big);
    const whole = await store.get("seg/1");
    assert.ok(whole.equals(big));
    assert.ok(whole.buffer instanceof SharedArrayBuffer, "a large body is in shared memory");
    const range = await store.get("seg/1", { offset: 1000, length: 100_000 });
    assert.ok(range.equals(big.subarray(1000, 101_000)));
    const small = await store.get("seg/1", { offset: 5, length: 10 });
    assert.ok(small.equals(big.subarray(5, 15)));
    assert.ok(!(small.buffer instanceof SharedArrayBuffer));
    await store.close();
  });

  it("refuses an http:// endpoint unless allowHttp, naming AWS_ALLOW_HTTP", () => {
    const opts = { bucket: "b", prefix: "p", endpoint: "http://127.0.0.1:9", region: "us-east-1", accessKeyId: "a", secretAccessKey: "s" };
    assert.throws(() => new S3Store(opts), (e: unknown) => e instanceof StoreConfigError && /AWS_ALLOW_HTTP/.test(e.message) && e.message.includes("http://127.0.0.1:9"));
    assert.ok(new S3Store({ ...opts, allowHttp: true }));
    assert.ok(new S3Store({ ...opts, endpoint: "https://127.0.0.1:9" }));
    assert.throws(() => new S3Store({ ...opts, endpoint: "ftp://127.0.0.1:9" }), /http:\/\/ or https:\/\//);
    assert.throws(() => new S3Store({ ...opts, endpoint: "not a url" }), /not a URL/);
    assert.throws(() => new S3Store({ ...opts, allowHttp: true, secretAccessKey: undefined }), /both an access key id and a secret/);
  });

  it("an unreachable endpoint fails quickly with an error naming the endpoint", async () => {
    // A port that was just free and is now closed: connections are refused.
    const server = createServer();
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((ok) => server.close(() => ok()));
    const endpoint = `http://127.0.0.1:${port}`;
    const store = createS3StoreForTest(gateway(), "unreachable", { endpoint, maxAttempts: 2, connectTimeoutMs: 500, idleTimeoutMs: 1_000 });
    const t0 = Date.now();
    await assert.rejects(store.get("some/key"), (e: unknown) => {
      assert.ok(e instanceof ObjectStoreError, String(e));
      assert.equal(e.key, "some/key");
      assert.ok(e.message.includes(endpoint), e.message);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
    assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms`);
    await store.close();
  });

  it("a missing bucket is an error, not a missing object", async () => {
    const store = createS3StoreForTest(gateway(), "p", { bucket: "no-such-bucket", maxAttempts: 1 });
    await assert.rejects(store.get("k"), (e: unknown) => e instanceof ObjectStoreError && e.name === "ObjectStoreError" && /NoSuchBucket/.test(e.message));
    await assert.rejects(store.delete("k"), /NoSuchBucket/);
    await store.close();
  });

  it("stores under its prefix: objects outside it are invisible, keys are prefix-relative", async () => {
    const g = gateway();
    const outer = createS3StoreForTest(g, "scoped");
    const inner = createS3StoreForTest(g, "scoped/inner/");
    await outer.put("sibling", Buffer.from("s"));
    await inner.put("x/y", Buffer.from("i"));
    assert.deepEqual(
      (await inner.list("")).map((m) => m.key),
      ["x/y"],
    );
    assert.deepEqual(
      (await outer.list("")).map((m) => m.key),
      ["inner/x/y", "sibling"],
    );
    assert.equal(inner.description, `s3://${g.bucket}/scoped/inner/`);
    await Promise.all([outer.close(), inner.close()]);
  });

  it("openStore opens s3:// URLs with caller-supplied connection options", async () => {
    const g = gateway();
    const store = await openStore(`s3://${g.bucket}/via-url`, {
      s3: { endpoint: g.endpoint, region: g.region, accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey, allowHttp: true },
    });
    assert.ok(store instanceof S3Store);
    await store.put("k", Buffer.from("v"));
    assert.equal((await store.get("k")).toString(), "v");
    await store.close();
  });
});

describe("parseS3Url", () => {
  it("splits bucket and prefix and normalizes the prefix", () => {
    assert.deepEqual(parseS3Url("s3://my-bucket"), { bucket: "my-bucket", prefix: "" });
    assert.deepEqual(parseS3Url("s3://my-bucket/"), { bucket: "my-bucket", prefix: "" });
    assert.deepEqual(parseS3Url("s3://my-bucket/a/b"), { bucket: "my-bucket", prefix: "a/b/" });
    assert.deepEqual(parseS3Url("s3://my.bucket.1/a/b/"), { bucket: "my.bucket.1", prefix: "a/b/" });
  });

  it("rejects malformed URLs with a clear error", () => {
    for (const [url, why] of [
      ["https://bucket/x", /expected s3:\/\/bucket/],
      ["s3://", /not a valid bucket name/],
      ["s3:///prefix", /not a valid bucket name/],
      ["s3://UPPER/x", /not a valid bucket name/],
      ["s3://b/x", /not a valid bucket name/],
      ["s3://bucket/a//b", /empty, '\.' or '\.\.' path segment/],
      ["s3://bucket/../x", /path segment/],
      ["s3://bucket/x?versionId=1", /no query or fragment/],
    ] as const) {
      assert.throws(() => parseS3Url(url), (e: unknown) => e instanceof StoreConfigError && why.test(e.message) && e.message.includes(url), url);
    }
  });
});
