//! Keeping the shim's resident set to what its event loop uses.
//!
//! Starting a container runs a lot of code once (libcontainer, spec parsing, seccomp),
//! and the kernel maps the pages around every page that code touches (fault-around),
//! so after a start the shim has several MiB of the berth binary resident that its
//! event loop never runs again. Once the shim has been idle for a moment after such
//! work it unmaps the clean file-backed pages (they are still in the page cache, and a
//! page that is used again is faulted back unchanged) and returns freed heap to the
//! kernel. Pages that differ from their file — relocated read-only data, anything
//! written — are never dropped: only mappings with no anonymous page qualify.

use std::time::Duration;

use super::sys;

/// How long the shim waits, after work that ran a lot of code, before trimming.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// One mapping whose resident pages can be dropped and faulted back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Droppable {
    pub start: usize,
    pub len: usize,
}

/// The mappings of a `/proc/<pid>/smaps` listing that are private, read-only (or
/// read-execute), backed by a file, and hold no anonymous (copy-on-write) page.
pub(crate) fn droppable_mappings(smaps: &str) -> Vec<Droppable> {
    let mut out = Vec::new();
    let mut candidate: Option<Droppable> = None;
    for line in smaps.lines() {
        if let Some(m) = Mapping::parse(line) {
            candidate = m.may_drop().then_some(Droppable {
                start: m.start,
                len: m.end - m.start,
            });
            continue;
        }
        if let Some(kib) = line.strip_prefix("Anonymous:") {
            let anonymous = kib.trim().trim_end_matches("kB").trim() != "0";
            if let Some(c) = candidate.take()
                && !anonymous
            {
                out.push(c);
            }
        }
    }
    out
}

/// The header line of one mapping in `/proc/<pid>/smaps`.
struct Mapping<'a> {
    start: usize,
    end: usize,
    perms: &'a [u8],
    inode: &'a str,
    path: Option<&'a str>,
}

impl<'a> Mapping<'a> {
    /// `Some` if `line` starts a mapping.
    fn parse(line: &'a str) -> Option<Mapping<'a>> {
        let mut fields = line.split_ascii_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        let perms = fields.next()?.as_bytes();
        if perms.len() != 4 || end < start {
            return None;
        }
        let _offset = fields.next()?;
        let _device = fields.next()?;
        let inode = fields.next()?;
        Some(Mapping {
            start,
            end,
            perms,
            inode,
            path: fields.next(),
        })
    }

    /// Private, not writable, backed by a file, not empty.
    fn may_drop(&self) -> bool {
        self.perms[0] == b'r'
            && self.perms[1] == b'-'
            && self.perms[3] == b'p'
            && self.inode != "0"
            && self.path.is_some_and(|p| p.starts_with('/'))
            && self.end > self.start
    }
}

/// Stack below the current frame that is kept when the rest of the unused stack is
/// dropped.
const STACK_MARGIN: usize = 16 * 1024;

/// Where the main thread's stack mapping starts.
fn stack_start(smaps: &str) -> Option<usize> {
    smaps
        .lines()
        .filter_map(Mapping::parse)
        .find(|m| m.path == Some("[stack]"))
        .map(|m| m.start)
}

/// Drops the resident clean file-backed pages of this process and trims its heap.
/// Best effort: a failure only leaves the pages resident.
pub(crate) fn trim() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let droppable = droppable_mappings(&smaps);
    let stack = stack_start(&smaps);
    drop(smaps);
    sys::trim_heap();
    if let Some(start) = stack {
        sys::drop_unused_stack(start, STACK_MARGIN);
    }
    // The mapping this code runs from goes last: whatever runs after a drop faults its
    // pages back in, so the fewer steps between the last drop and the wait, the less
    // stays resident.
    let here = trim as fn() as usize;
    let (own, others): (Vec<Droppable>, Vec<Droppable>) = droppable
        .into_iter()
        .partition(|m| (m.start..m.start + m.len).contains(&here));
    for m in others.into_iter().chain(own) {
        sys::drop_clean_pages(m.start, m.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
557be35bf000-557be3bde000 r--p 00000000 00:2e 1234 /run/berth/berth-exe
Size:               6268 kB
Rss:                1024 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw sd
557be3bde000-557be4e80000 r-xp 0061f000 00:2e 1234 /run/berth/berth-exe
Size:              19080 kB
Anonymous:             0 kB
557be4e80000-557be4f49000 r--p 018c1000 00:2e 1234 /run/berth/berth-exe
Size:                804 kB
Anonymous:           804 kB
557be4f49000-557be4f51000 rw-p 0198a000 00:2e 1234 /run/berth/berth-exe
Anonymous:            32 kB
557c1785b000-557c1787c000 rw-p 00000000 00:00 0 [heap]
Anonymous:            80 kB
7f8155179000-7f81552cf000 r-xp 00026000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f8155349000-7f815534b000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
7f815534d000-7f815534e000 rw-s 00000000 00:01 7 /dev/zero (deleted)
Anonymous:             0 kB
";

    #[test]
    fn only_private_read_only_file_mappings_without_anonymous_pages() {
        let got = droppable_mappings(SMAPS);
        assert_eq!(
            got,
            vec![
                Droppable {
                    start: 0x557be35bf000,
                    len: 0x557be3bde000 - 0x557be35bf000
                },
                Droppable {
                    start: 0x557be3bde000,
                    len: 0x557be4e80000 - 0x557be3bde000
                },
                Droppable {
                    start: 0x7f8155179000,
                    len: 0x7f81552cf000 - 0x7f8155179000
                },
            ]
        );
    }

    #[test]
    fn the_stack_mapping_is_found_and_never_droppable() {
        let smaps = "7ffe423c3000-7ffe423e4000 rw-p 00000000 00:00 0                          [stack]\nAnonymous: 80 kB\n";
        assert_eq!(stack_start(smaps), Some(0x7ffe423c3000));
        assert!(droppable_mappings(smaps).is_empty());
    }

    #[test]
    fn relocated_read_only_data_is_kept() {
        let got = droppable_mappings(SMAPS);
        assert!(got.iter().all(|m| m.start != 0x557be4e80000));
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_not_dropped() {
        let smaps =
            "7f8155179000-7f81552cf000 r-xp 00026000 fe:01 99 /usr/lib/libc.so.6\nRss: 4 kB\n";
        assert!(droppable_mappings(smaps).is_empty());
    }

    #[test]
    fn trimming_this_process_keeps_it_working() {
        let before: Vec<u64> = (0..1000).collect();
        trim();
        let after: u64 = before.iter().sum();
        assert_eq!(after, 499_500);
        assert_eq!(format!("{}", 42), "42");
    }
}
