//! Root tests: each builds a fake host (a fresh network and mount namespace) and exercises
//! berth's networking in it. They need root and `ip`, `nft`, `nsenter`, `unshare` and
//! `busybox`; without those they are skipped, unless `BERTH_TEST_ROOT=1`, which makes that a
//! failure.

mod awsvpc;
mod harness;
mod lifecycle;
mod modes;
