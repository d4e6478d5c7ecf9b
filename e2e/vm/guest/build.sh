# Compile a small C project (a header, 16 sources, a static library, a program) on the kernel
# NFS mount with make -j2; run it; the objects match a build on the guest's tmpfs; an
# incremental build after touching one source rebuilds only that object (make trusts the mtimes
# the server keeps); make clean.
mount_zerofs hard
N=${NSRC:-16}
P="$MNT/proj"

gen_c_project "$P" "$N"
cd "$P"
# The same project built on the guest's tmpfs gives the expected output.
cp -r "$P" /tmp/proj-ref
step build_ref make -s -C /tmp/proj-ref -j2 prog
want=$(/tmp/proj-ref/prog)
step build_full make -j2 prog > /tmp/build1.log
expect_eq "objects compiled" "$(grep -c -- ' -c ' /tmp/build1.log)" $((N + 2))
expect_eq "program output" "$(./prog)" "$want"
cmp <(objdump -d src/part3.o | tail -n +3) <(objdump -d /tmp/proj-ref/src/part3.o | tail -n +3) || fail "object code differs from the tmpfs build"
step build_noop make -j2 prog > /tmp/build2.log
grep -q "up to date" /tmp/build2.log || fail "a second make rebuilt something: $(cat /tmp/build2.log)"
sleep 1
touch src/part5.c
step build_incremental make -j2 prog > /tmp/build3.log
expect_eq "objects recompiled after touching one source" "$(grep -c -- ' -c ' /tmp/build3.log)" 1
grep -q 'src/part5.c' /tmp/build3.log || fail "the touched source was not rebuilt: $(cat /tmp/build3.log)"
expect_eq "program output after the rebuild" "$(./prog)" "$want"
make -s clean
expect_eq "files left after make clean" "$(find . -name '*.o' -o -name '*.d' -o -name prog -o -name '*.a' | wc -l)" 0
cd /
umount "$MNT"
