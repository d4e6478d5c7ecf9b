import { startVersitygw } from "../../../test/support/versitygw.ts";
import { libnfsSuite } from "./libnfs-suite.ts";

libnfsSuite("a real S3 server (versitygw)", async () => {
  const vgw = await startVersitygw();
  return {
    options: {
      url: `s3://${vgw.bucket}/volume`,
      env: {
        AWS_ENDPOINT_URL: vgw.endpoint,
        AWS_ACCESS_KEY_ID: vgw.accessKeyId,
        AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey,
        AWS_DEFAULT_REGION: vgw.region,
        AWS_ALLOW_HTTP: "true",
      },
    },
    // versitygw's POSIX backend keeps the bucket's objects as files under its data directory.
    storageDirs: [vgw.dataDir],
    cleanup: () => vgw.stop(),
  };
});
