/**
 * The operator's rotation Jobs run the server's password change (ZEROFS_NEW_PASSWORD_FILE). This
 * test runs that change for real, through the server's own library, on a local-directory store:
 * the old password stops working, the new one opens the same data, a retried change (the rotate
 * Job running twice after a crash) and the verify step (new -> new) both succeed, and a wrong
 * old password changes nothing. The operator itself never imports server code; only this test does.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { changePassword, openKeyring, WrongPasswordError } from "../../server/src/crypto/keyring.ts";
import { openDatabase } from "../../server/src/lsm/open-database.ts";
import { WriteBatch } from "../../server/src/lsm/write-batch.ts";
import { LocalStore } from "../../server/src/store/local-store.ts";

describe("server password change (what the rotation Job runs)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-pwchange-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("the new password opens the data, the old one no longer does", async () => {
    const url = join(dir, "vol");
    const first = await openDatabase({ url, password: "old-password" });
    await first.db.write(new WriteBatch().put(Buffer.from("k"), Buffer.from("kept across the change")), { awaitDurable: true });
    await first.db.flush();
    await first.close();

    const store = new LocalStore(url);
    try {
      const r = await changePassword(store, "old-password", "new-password");
      assert.equal(r.changed, true);
      await assert.rejects(openKeyring(store, "old-password"), WrongPasswordError);
      const k = await openKeyring(store, "new-password");
      assert.equal(k.keyId, r.keyId, "same data key, re-wrapped");

      // The rotate Job re-run after a crash (old -> new again) and the verify Job (new -> new) succeed.
      assert.equal((await changePassword(store, "old-password", "new-password")).changed, false);
      await changePassword(store, "new-password", "new-password");
      // A wrong old password fails and writes nothing: the new password still opens the store.
      await assert.rejects(changePassword(store, "not-the-password", "other"), WrongPasswordError);
      await openKeyring(store, "new-password");
    } finally {
      await store.close();
    }

    await assert.rejects(openDatabase({ url, password: "old-password" }), WrongPasswordError);
    const reopened = await openDatabase({ url, password: "new-password" });
    try {
      assert.equal((await reopened.db.get(Buffer.from("k")))?.toString(), "kept across the change");
    } finally {
      await reopened.close();
    }
  });
});
