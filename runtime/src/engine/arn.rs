//! ECS ARNs and ids as berth mints and parses them.
//!
//! `arn:aws:ecs:<region>:<account>:task/<cluster>/<32-hex id>`,
//! `…:cluster/<name>`, `…:container/<cluster>/<task-id>/<uuid>`,
//! `…:container-instance/<cluster>/<32-hex id>`.

/// Region and account every ARN carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account: String,
}

impl Default for ArnScope {
    fn default() -> Self {
        ArnScope {
            region: "us-east-1".into(),
            account: "000000000000".into(),
        }
    }
}

impl ArnScope {
    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}", self.region, self.account)
    }

    pub fn cluster(&self, name: &str) -> String {
        format!("{}:cluster/{name}", self.prefix())
    }

    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}:task/{cluster}/{id}", self.prefix())
    }

    pub fn service(&self, cluster: &str, name: &str) -> String {
        format!("{}:service/{cluster}/{name}", self.prefix())
    }

    pub fn container(&self, cluster: &str, task_id: &str, uuid: &str) -> String {
        format!("{}:container/{cluster}/{task_id}/{uuid}", self.prefix())
    }

    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}:container-instance/{cluster}/{id}", self.prefix())
    }

    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        format!("{}:task-definition/{family}:{revision}", self.prefix())
    }
}

/// A cluster reference as ECS accepts it: a name or a cluster ARN; absent means
/// `default`.
pub fn cluster_name(reference: Option<&str>) -> String {
    match reference.map(str::trim) {
        None | Some("") => "default".to_owned(),
        Some(r) => match r.rsplit_once(":cluster/") {
            Some((_, name)) => name.to_owned(),
            None => r.to_owned(),
        },
    }
}

/// A task reference: a bare id or a task ARN (long form `task/<cluster>/<id>` or the
/// old short form `task/<id>`). Returns the id and, for ARNs, the cluster named in it.
pub fn task_id(reference: &str) -> (String, Option<String>) {
    match reference.rsplit_once(":task/") {
        Some((_, rest)) => match rest.split_once('/') {
            Some((cluster, id)) => (id.to_owned(), Some(cluster.to_owned())),
            None => (rest.to_owned(), None),
        },
        None => (reference.to_owned(), None),
    }
}

/// A fresh random hex id of `bytes` bytes (ECS task ids are 16 bytes, 32 hex digits).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the kernel's random source");
    hex::encode(b)
}

/// An id minted for one task's endpoint (a container's metadata endpoint, the task's
/// credentials): `<task-id>-<random hex>`, so a request finds the task at once and no
/// one can guess another task's.
pub(crate) fn task_endpoint_id(task_id: &str, random_bytes: usize) -> String {
    format!("{task_id}-{}", random_hex(random_bytes))
}

/// The task id at the front of an id made by [`task_endpoint_id`], if it has that shape.
pub(crate) fn task_of_endpoint_id(id: &str) -> Option<&str> {
    let (task_id, _) = id.split_once('-')?;
    (task_id.len() == 32 && task_id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(task_id)
}

/// A random UUID (version 4 layout).
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the kernel's random source");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ids_lead_back_to_their_task_only() {
        let task = random_hex(16);
        let id = task_endpoint_id(&task, 8);
        assert_eq!(task_of_endpoint_id(&id), Some(task.as_str()));
        assert_eq!(task_of_endpoint_id(&task), None);
        assert_eq!(task_of_endpoint_id("abc-0123"), None);
        assert_eq!(task_of_endpoint_id(&format!("{}-x", "g".repeat(32))), None);
    }

    #[test]
    fn arns_have_ecs_shapes_and_parse_back() {
        let s = ArnScope::default();
        let id = random_hex(16);
        assert_eq!(id.len(), 32);
        let arn = s.task("default", &id);
        assert_eq!(
            arn,
            format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}")
        );
        assert_eq!(task_id(&arn), (id.clone(), Some("default".into())));
        assert_eq!(task_id(&id), (id.clone(), None));
        assert_eq!(
            task_id("arn:aws:ecs:us-east-1:1:task/abc"),
            ("abc".into(), None)
        );
        assert_eq!(cluster_name(None), "default");
        assert_eq!(cluster_name(Some(&s.cluster("prod"))), "prod");
        assert_eq!(cluster_name(Some("prod")), "prod");
        assert_eq!(
            s.task_definition("web", 3),
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"
        );
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
