import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Registry } from "prom-client";

export interface HealthCheck {
  ok: boolean;
  /** Why not ok. */
  reason?: string;
  /** A warning while ok, e.g. "degraded: object store unavailable ...": the body's first line. */
  detail?: string;
}

export interface HealthSource {
  /** Liveness: the process can still serve (not fenced, not failed). */
  healthy(): HealthCheck;
  /** Readiness: the NFS port accepts requests. */
  ready(): HealthCheck;
}

/** Handles the admin API under /v1/ (admin/admin-api.ts). */
export type AdminRoute = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * `/metrics` (Prometheus text format), `/healthz` and `/readyz` on one small HTTP server, plus
 * the admin API under /v1/ when `admin` is given (404 otherwise).
 * Connections from addresses `allowClient` refuses are closed before anything is read.
 */
export async function startHttpEndpoint(
  host: string,
  port: number,
  registry: Registry,
  health: HealthSource,
  log: Logger,
  allowClient: (remoteAddress: string) => boolean = () => true,
  admin?: AdminRoute,
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (path === "/v1" || path.startsWith("/v1/")) {
      if (admin) admin(req, res);
      else res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "the admin API is off (set ZEROFS_ADMIN_TOKEN_FILE)" }));
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (err: unknown) => {
          log.error({ err }, "collecting metrics failed");
          res.writeHead(500).end("metrics collection failed\n");
        },
      );
      return;
    }
    if (path === "/healthz" || path === "/readyz") {
      const r = path === "/healthz" ? health.healthy() : health.ready();
      res.writeHead(r.ok ? 200 : 503, { "content-type": "text/plain" }).end(r.ok ? `${r.detail ?? "ok"}\n` : `${r.reason ?? "not ready"}\n`);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz or /readyz\n");
  });
  server.on("connection", (socket) => {
    const peer = socket.remoteAddress ?? "";
    if (peer !== "" && allowClient(peer)) return;
    log.debug({ peer }, "HTTP connection refused by ZEROFS_HTTP_ALLOWED_CLIENTS");
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
