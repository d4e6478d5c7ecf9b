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
  if (!pod.spec.nodeName) {
    // The API server answers 204 with no body for a pod on no node: say why there is nothing.
    throw new CliError(EXIT.FAILED, `server pod ${v.metadata.namespace}/${podName} is not scheduled on a node yet, so it has no log (kubectl describe pod -n ${v.metadata.namespace} ${podName})`);
  }
  const path = `/api/v1/namespaces/${encodeURIComponent(v.metadata.namespace)}/pods/${encodeURIComponent(podName)}/log`;
  let res;
  try {
    res = await ctx.client.getRaw(path, `get logs of server pod ${v.metadata.namespace}/${podName} (node ${pod.spec.nodeName})`, {
      container: "zerofs",
      follow: o.follow || undefined,
      tailLines: o.tail,
      previous: o.previous || undefined,
      timestamps: o.timestamps || undefined,
    }, signal);
  } catch (err) {
    // A 404 here is about the node or the container, not the volume: not exit code 3.
    throw new CliError(EXIT.FAILED, (err as Error).message);
  }
  const text = new StringDecoder("utf8"); // a chunk may end inside a character
  for await (const c of res as AsyncIterable<Buffer>) ctx.io.out(text.write(c));
  ctx.io.out(text.end());
  return EXIT.OK;
}
