/** API errors that say which object and what went wrong. */

export interface StatusDetails {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly body: StatusDetails | undefined;
  constructor(what: string, status: number, body: StatusDetails | undefined, raw?: string) {
    const detail = body?.message ?? raw?.slice(0, 500) ?? "";
    super(`${what}: HTTP ${status}${body?.reason ? ` ${body.reason}` : ""}${detail ? `: ${detail}` : ""}`);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = body?.reason ?? "";
    this.body = body;
  }
}

/** A watch's resourceVersion is too old (410 Gone / "Expired"): the informer must list again. */
export class WatchExpiredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WatchExpiredError";
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409;
export const isAlreadyExists = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409 && e.reason === "AlreadyExists";
export const isGone = (e: unknown): boolean => e instanceof WatchExpiredError || (e instanceof KubeApiError && e.status === 410);
export const isForbidden = (e: unknown): boolean => e instanceof KubeApiError && e.status === 403;
export const isInvalid = (e: unknown): boolean => e instanceof KubeApiError && e.status === 422;
