/**
 * Metric labels of an RPC call. Program and procedure numbers come from the caller, so only the
 * programs this server serves and the procedures their protocols define get a label of their
 * own (one the server does not implement, such as PORTMAP's CALLIT, is counted with status
 * proc_unavail); any other number is "other". Otherwise a client walking through procedure
 * numbers would mint a new label set per call, each a counter plus a latency histogram (~20
 * series) kept for the life of the process: memory and /metrics size without bound.
 */
import { MOUNT_PROGRAM, MountProc } from "./mount.ts";
import { NFS_PROGRAM, Nfs3Proc } from "./nfs3-types.ts";
import { PMAP_PROGRAM, PmapProc } from "./portmap.ts";

export interface CallLabels {
  program: string;
  procedure: string;
}

const OTHER = "other";

/** Label objects made once per known (program, procedure): the hot path allocates none. */
function labelsOf(program: string, procs: Record<string, number>): CallLabels[] {
  const out: CallLabels[] = [];
  for (const [procedure, n] of Object.entries(procs)) out[n] = { program, procedure };
  return out;
}

const PROGRAMS = new Map<number, { known: readonly CallLabels[]; other: CallLabels }>(
  ([
    [PMAP_PROGRAM, "portmap", PmapProc],
    [NFS_PROGRAM, "nfs", Nfs3Proc],
    [MOUNT_PROGRAM, "mount", MountProc],
  ] as const).map(([prog, name, procs]) => [prog, { known: labelsOf(name, procs), other: { program: name, procedure: OTHER } }]),
);
const UNKNOWN_PROGRAM: CallLabels = { program: OTHER, procedure: OTHER };

/** The (bounded) labels for a call to `prog`/`proc`; the result is shared: do not modify it. */
export function callLabels(prog: number, proc: number): Readonly<CallLabels> {
  const p = PROGRAMS.get(prog);
  if (p === undefined) return UNKNOWN_PROGRAM;
  // Any number that is not an index of `known` (negative, fractional, too large) is undefined there.
  return p.known[proc] ?? p.other;
}
