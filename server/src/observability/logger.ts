/**
 * The `zerofs` command's logger. Kubernetes and log collectors want one JSON object per line on
 * stdout; a person at a terminal wants readable lines. ZEROFS_LOG_FORMAT picks: json, pretty, or
 * auto (pretty exactly when stdout is a TTY). Pretty output goes through pino-pretty in this
 * thread, synchronously, so the line a fatal error logs just before process.exit is not lost
 * (pino flushes its own JSON destination at exit itself).
 */
import { pino, type Logger } from "pino";
import pinoPretty from "pino-pretty";

export type LogFormat = "json" | "pretty" | "auto";

export function resolveLogFormat(format: LogFormat, stdoutIsTTY: boolean): "json" | "pretty" {
  return format === "auto" ? (stdoutIsTTY ? "pretty" : "json") : format;
}

/** A logger writing to stdout (fd 1). */
export function createLogger(level: string, format: LogFormat, stdoutIsTTY = process.stdout.isTTY === true): Logger {
  const opts = { name: "zerofs", level };
  // JSON: pino's own stdout destination, as before (buffered, flushed at exit by pino).
  if (resolveLogFormat(format, stdoutIsTTY) === "json") return pino(opts);
  return pino(
    opts,
    pinoPretty({
      destination: 1,
      sync: true,
      colorize: stdoutIsTTY,
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname,name,component",
      // "[lsm] database opened {epoch: 3, ...}": one line per record (errors keep their stack).
      messageFormat: "{if component}[{component}] {end}{msg}",
      singleLine: true,
    }),
  );
}
