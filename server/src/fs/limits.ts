/**
 * Limits the filesystem reports to clients (FSINFO, PATHCONF, FSSTAT) and enforces.
 */

export const RTMAX = 1024 * 1024;
export const WTMAX = 1024 * 1024;
export const LINK_MAX = 65000;
/** Reported as total size/files when no capacity is configured. */
export const UNLIMITED_BYTES = 2 ** 50;
export const UNLIMITED_FILES = 2 ** 40;
