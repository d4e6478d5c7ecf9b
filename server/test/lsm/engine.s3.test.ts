import { after, before } from "node:test";
import { createS3StoreForTest, startVersitygw, type Versitygw } from "../../../test/support/versitygw.ts";
import { engineSuite } from "./engine-suite.ts";

// The same engine suite against a real S3 server with conditional writes (versitygw on loopback).
let vgw: Versitygw | undefined;
let n = 0;
before(async () => {
  vgw = await startVersitygw();
});
after(async () => {
  await vgw?.stop();
});

engineSuite(
  "a real S3 server (versitygw)",
  async () => {
    if (!vgw) throw new Error("versitygw did not start");
    const store = createS3StoreForTest(vgw, `engine-${process.pid}-${n++}`);
    return { store, cleanup: () => store.close() };
  },
  { modelOps: 400, crashTrials: 20 },
);
