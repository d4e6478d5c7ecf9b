/**
 * exports(5) `secure`: MOUNT and NFS calls must come from a reserved source port (< 1024), which
 * on the client's host only root can bind. It is what makes AUTH_SYS mean anything: without it
 * any local user of a client machine can send a credential claiming to be anyone. NULL (the
 * ping) is answered from any port. `insecure` lifts the rule for clients that cannot bind a
 * reserved port (unprivileged user-space clients, NAT such as qemu's user network).
 */

/** Source ports below this are reserved (bindable by root only on the client's host). */
export const RESERVED_PORT_LIMIT = 1024;

/** True when a call of `proc` to a program that wants reserved ports must be refused. */
export function sourcePortRefused(programWantsReservedPort: boolean, proc: number, remotePort: number, insecure: boolean): boolean {
  return programWantsReservedPort && !insecure && proc !== 0 && !(remotePort > 0 && remotePort < RESERVED_PORT_LIMIT);
}
