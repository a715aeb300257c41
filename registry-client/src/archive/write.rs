//! Writing an OCI archive (an OCI image layout as one tar) from content-store blobs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use serde_json::json;

use super::{ArchiveError, CONTAINERD_NAME, REF_NAME};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::manifest::{Descriptor, media_type};
use crate::platform::Platform;

/// One image to write with [`write_oci_archive`].
#[derive(Debug, Clone)]
pub struct SaveImage {
    /// Full names (`docker.io/library/busybox:latest`).
    pub names: Vec<String>,
    /// The manifest digest; the manifest, config and layer blobs must be in the store.
    pub manifest_digest: Digest,
    /// Manifest media type.
    pub media_type: String,
    /// Manifest size.
    pub size: u64,
    /// The image's platform.
    pub platform: Platform,
    /// Config and layer descriptors.
    pub blobs: Vec<Descriptor>,
}

/// Writes an OCI archive of `images` to `out` (atomically: a temporary file renamed
/// into place), reading blobs from `content`.
pub fn write_oci_archive(
    out: &Path,
    images: &[SaveImage],
    content: &ContentStore,
) -> Result<(), ArchiveError> {
    let err = |source| ArchiveError::Write {
        path: out.to_owned(),
        source,
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.bA-tmp-{}",
        out.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("archive"),
        std::process::id()
    ));
    let result = (|| -> io::Result<()> {
        let mut b = tar::Builder::new(io::BufWriter::new(File::create(&tmp)?));
        let add = |b: &mut tar::Builder<io::BufWriter<File>>,
                   name: &str,
                   data: &mut dyn Read,
                   size: u64| {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(size);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data)
        };
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        add(&mut b, "oci-layout", &mut &layout[..], layout.len() as u64)?;
        let mut manifests = Vec::new();
        for img in images {
            let mut platform =
                json!({"architecture": img.platform.architecture, "os": img.platform.os});
            if let Some(v) = &img.platform.variant {
                platform["variant"] = json!(v);
            }
            let names: Vec<Option<&String>> = if img.names.is_empty() {
                vec![None]
            } else {
                img.names.iter().map(Some).collect()
            };
            for name in names {
                let mut desc = json!({"mediaType": img.media_type, "digest": img.manifest_digest, "size": img.size, "platform": platform});
                if let Some(n) = name {
                    let mut a = BTreeMap::new();
                    a.insert(REF_NAME, n.as_str());
                    a.insert(CONTAINERD_NAME, n.as_str());
                    desc["annotations"] = json!(a);
                }
                manifests.push(desc);
            }
        }
        let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": manifests}))
            .expect("indexes serialise");
        add(
            &mut b,
            "index.json",
            &mut index.as_slice(),
            index.len() as u64,
        )?;
        let mut written = std::collections::HashSet::new();
        for img in images {
            let manifest = Descriptor {
                media_type: img.media_type.clone(),
                digest: img.manifest_digest.clone(),
                size: img.size,
                urls: None,
                platform: None,
                annotations: None,
            };
            for d in std::iter::once(&manifest).chain(img.blobs.iter()) {
                if !written.insert(d.digest.clone()) {
                    continue;
                }
                let mut f = content.open_blob(&d.digest).map_err(io::Error::other)?;
                let size = f.metadata()?.len();
                add(
                    &mut b,
                    &format!("blobs/{}/{}", d.digest.algorithm().name(), d.digest.hex()),
                    &mut f,
                    size,
                )?;
            }
        }
        let mut w = b.into_inner()?;
        w.flush()?;
        w.get_ref().sync_all()?;
        std::fs::rename(&tmp, out)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}
