/** `kubectl zerofs logs <volume>`: the server pod's log (pods/<pod>/log), followed with -f. */
import { StringDecoder } from "node:string_decoder";
import { CliError, EXIT, type Ctx } from "./context.ts";
import { getVolume, serverPods } from "./volume.ts";

export interface LogsOptions {
  follow: boolean;
  tail?: number;
  previous: boolean;
  timestamps: boolean;
}

export async function logs(ctx: Ctx, name: string, o: LogsOptions, signal?: AbortSignal): Promise<number> {
  const v = await getVolume(ctx, name);
  const pod = (await serverPods(ctx, v))[0];
  if (!pod) {
    throw new CliError(EXIT.NOT_FOUND, `volume ${v.metadata.namespace}/${name} has no server pod (phase ${v.status?.phase ?? "Unknown"}${v.status?.message ? `: ${v.status.message}` : ""})`);
  }
  const podName = pod.metadata.name ?? "";
  const path = `/api/v1/namespaces/${encodeURIComponent(v.metadata.namespace)}/pods/${encodeURIComponent(podName)}/log`;
  const res = await ctx.client.getRaw(path, `get logs of server pod ${v.metadata.namespace}/${podName}`, {
    container: "zerofs",
    follow: o.follow || undefined,
    tailLines: o.tail,
    previous: o.previous || undefined,
    timestamps: o.timestamps || undefined,
  }, signal);
  const text = new StringDecoder("utf8"); // a chunk may end inside a character
  for await (const c of res as AsyncIterable<Buffer>) ctx.io.out(text.write(c));
  ctx.io.out(text.end());
  return EXIT.OK;
}
