//! Resolving a container's `user` (`name`, `uid`, `name:group`, `uid:gid`, …) against
//! the image's `/etc/passwd` and `/etc/group`, as Docker does.

use super::SpecError;

/// A resolved user: what goes into the OCI spec's `process.user`, plus `HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Reads files of the container's root filesystem (resolved inside it).
pub trait RootfsFiles {
    /// The file's contents, or `None` when it does not exist or cannot be read.
    fn read_to_string(&self, path: &str) -> Option<String>;
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0],
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5],
            })
        })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0],
                gid: f[2].parse().ok()?,
                members: f[3].split(',').filter(|m| !m.is_empty()).collect(),
            })
        })
}

/// Resolves `spec` (empty means root) in the container's files.
pub fn resolve_user(spec: &str, files: &dyn RootfsFiles) -> Result<ResolvedUser, SpecError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = files.read_to_string("/etc/passwd").unwrap_or_default();
    let group = files.read_to_string("/etc/group").unwrap_or_default();

    let (uid, mut gid, home, name) = if user_part.is_empty() {
        match passwd_entries(&passwd).find(|e| e.uid == 0) {
            Some(e) => (0, 0, e.home.to_owned(), Some(e.name.to_owned())),
            None => (0, 0, "/root".to_owned(), None),
        }
    } else if let Ok(uid) = user_part.parse::<u32>() {
        match passwd_entries(&passwd).find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, e.home.to_owned(), Some(e.name.to_owned())),
            None => (uid, 0, "/".to_owned(), None),
        }
    } else {
        let e = passwd_entries(&passwd)
            .find(|e| e.name == user_part)
            .ok_or_else(|| {
                SpecError::User(format!(
                    "unable to find user {user_part}: no matching entries in passwd file"
                ))
            })?;
        (e.uid, e.gid, e.home.to_owned(), Some(e.name.to_owned()))
    };

    if let Some(g) = group_part {
        gid = if let Ok(n) = g.parse::<u32>() {
            n
        } else {
            group_entries(&group)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    SpecError::User(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?
        };
    }

    // Supplementary groups come from group membership, as Docker does, unless the
    // group was given explicitly.
    let additional_gids = match (&name, group_part) {
        (Some(name), None) => {
            let mut v: Vec<u32> = group_entries(&group)
                .filter(|e| e.members.contains(&name.as_str()) && e.gid != gid)
                .map(|e| e.gid)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        }
        _ => Vec::new(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Files(HashMap<&'static str, &'static str>);
    impl RootfsFiles for Files {
        fn read_to_string(&self, path: &str) -> Option<String> {
            self.0.get(path).map(|s| s.to_string())
        }
    }

    fn image() -> Files {
        Files(HashMap::from([
            (
                "/etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n\
                 app:x:1000:1000::/home/app:/bin/sh\n",
            ),
            (
                "/etc/group",
                "root:x:0:\nwww:x:33:\napp:x:1000:\nstaff:x:50:app,www\n",
            ),
        ]))
    }

    #[test]
    fn resolves_every_form_docker_accepts() {
        let f = image();
        let r = resolve_user("", &f).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let r = resolve_user("app", &f).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional_gids.clone(), r.home.as_str()),
            (1000, 1000, vec![50], "/home/app")
        );
        let r = resolve_user("33", &f).unwrap();
        assert_eq!((r.uid, r.gid), (33, 33));
        let r = resolve_user("4242", &f).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (4242, 0, "/"));
        let r = resolve_user("app:staff", &f).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids.len()), (1000, 50, 0));
        let r = resolve_user("1000:7", &f).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 7));
    }

    #[test]
    fn unknown_names_are_errors_that_say_so() {
        let f = image();
        let e = resolve_user("nobody", &f).unwrap_err().to_string();
        assert!(e.contains("unable to find user nobody"), "{e}");
        let e = resolve_user("app:wheel", &f).unwrap_err().to_string();
        assert!(e.contains("unable to find group wheel"), "{e}");
    }
}
