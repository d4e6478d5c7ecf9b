/**
 * deletionPolicy Delete: removes every object under the volume's s3://bucket/prefix/ once its
 * server is stopped. The prefix is always treated as a folder ("data" never matches "data2/...");
 * a URL without a prefix is refused by the CRD and again here.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { parseStorageUrl } from "../api/spec.ts";

export interface DataTarget {
  url: string;
  endpoint?: string;
  region: string;
  allowHttp: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
}

export interface DataDeleter {
  /** Deletes everything under the URL's prefix; returns how many objects were deleted. */
  deletePrefix(t: DataTarget): Promise<number>;
}

export class S3DataDeleter implements DataDeleter {
  async deletePrefix(t: DataTarget): Promise<number> {
    const { bucket, prefix } = parseStorageUrl(t.url);
    if (!prefix) throw new Error(`refusing to delete the whole bucket ${bucket}: ${t.url} has no prefix`);
    if (t.endpoint?.startsWith("http://") && !t.allowHttp) throw new Error(`${t.endpoint} is plain http and allowHttp is false`);
    const folder = prefix.endsWith("/") ? prefix : `${prefix}/`;
    const s3 = new S3Client({
      region: t.region,
      endpoint: t.endpoint,
      // Endpoints other than AWS (MinIO, versitygw, Ceph) generally need path-style addressing.
      forcePathStyle: t.endpoint !== undefined,
      credentials: t.accessKeyId && t.secretAccessKey ? { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey } : undefined,
    });
    let deleted = 0;
    try {
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: folder, ContinuationToken: token }));
        const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
        for (let i = 0; i < keys.length; i += 1000) {
          const batch = keys.slice(i, i + 1000);
          const r = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
          if (r.Errors && r.Errors.length > 0) {
            const e = r.Errors[0];
            throw new Error(`deleting s3://${bucket}/${e?.Key ?? "?"}: ${e?.Code ?? "error"} ${e?.Message ?? ""} (${r.Errors.length} failed)`);
          }
          deleted += batch.length;
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } finally {
      s3.destroy();
    }
    return deleted;
  }
}
