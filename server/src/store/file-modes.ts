/**
 * Modes of everything the server writes on local disk (volume objects, locks, the disk cache):
 * owner only. `keys/dek` is the Argon2id-wrapped data key, an offline password-guessing target,
 * and the rest is ciphertext whose names and sizes still tell something; no other local user
 * needs any of it. (The umask can only take bits away from these.)
 */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;
