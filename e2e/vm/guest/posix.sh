# The POSIX permission/semantics suite (posix-suite.ts) on the kernel NFS mount, as root with
# unprivileged users (uid 1001 and 1002) as child processes.
mount_zerofs hard
step posix "$NODE" /run/job/posix-suite.ts "$MNT/posix"
cd /
umount "$MNT"
