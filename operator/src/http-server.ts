/** /metrics (Prometheus), /healthz (the process answers) and /readyz (Operator.ready()). */
import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import type { Operator } from "./operator.ts";

export function startHttpServer(op: Operator, address: string, port: number, log: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    if (url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (url === "/readyz") {
      const ok = op.ready();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "not ready\n");
    } else if (url === "/metrics") {
      op.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": op.metrics.registry.contentType }).end(text),
        (err: unknown) => {
          log.error({ err: (err as Error).message }, "metrics collection failed");
          res.writeHead(500).end();
        },
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => {
      log.info({ address, port }, "serving /metrics /healthz /readyz");
      resolve(server);
    });
  });
}
