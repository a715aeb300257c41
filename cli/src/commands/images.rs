//! pull, images, rmi, load, save.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_runtime::images::{ProgressEvent, ProgressRenderer};
use clap::Args;
use serde_json::{Value, json};

use super::{client, human_size, print_table, short_digest};
use crate::config::{self, Globals};

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Image reference (`busybox`, `ghcr.io/o/r:tag`, `host:port/repo@sha256:…`).
    reference: String,
    /// Platform to pull (`linux/arm64/v8`); default: this host's.
    #[arg(long)]
    platform: Option<String>,
    /// Print only the final digest.
    #[arg(long, short)]
    quiet: bool,
}

pub(crate) async fn pull(g: &Globals, a: PullArgs) -> Result<ExitCode> {
    let c = client(g);
    let tty = std::io::stderr().is_terminal();
    let mut renderer = (!a.quiet).then(|| ProgressRenderer::new(std::io::stderr(), tty));
    let mut summary = Value::Null;
    c.berth_stream(
        "PullImage",
        json!({"reference": a.reference, "platform": a.platform}),
        |line| {
            if let Some(p) = line.get("progress") {
                if let (Some(r), Ok(ev)) = (
                    renderer.as_mut(),
                    serde_json::from_value::<ProgressEvent>(p.clone()),
                ) {
                    r.event(&ev)?;
                }
            } else if let Some(s) = line.get("summary") {
                summary = s.clone();
            }
            Ok(())
        },
    )
    .await?;
    let digest = summary
        .get("manifest_digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let reference = summary
        .get("reference")
        .and_then(Value::as_str)
        .unwrap_or(&a.reference);
    if a.quiet {
        println!("{digest}");
    } else {
        println!("{reference}: {digest}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct ImagesArgs {
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

pub(crate) async fn list(g: &Globals, a: ImagesArgs) -> Result<ExitCode> {
    let v = client(g).berth("ListImages", json!({})).await?;
    let images = v["images"].as_array().cloned().unwrap_or_default();
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&images)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                i["reference"].as_str().unwrap_or_default().to_owned(),
                short_digest(i["manifest_digest"].as_str().unwrap_or_default()),
                short_digest(i["image_id"].as_str().unwrap_or_default()),
                i["platform"].as_str().unwrap_or_default().to_owned(),
                human_size(i["size"].as_u64().unwrap_or(0)),
                i["created"].as_str().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    print_table(
        &[
            "REFERENCE",
            "DIGEST",
            "IMAGE ID",
            "PLATFORM",
            "SIZE",
            "CREATED",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct RmiArgs {
    /// References to remove.
    #[arg(required = true)]
    references: Vec<String>,
}

pub(crate) async fn rmi(g: &Globals, a: RmiArgs) -> Result<ExitCode> {
    let v = client(g)
        .berth("RemoveImages", json!({"references": a.references}))
        .await?;
    for r in v["removed"].as_array().into_iter().flatten() {
        for name in r["references"].as_array().into_iter().flatten() {
            println!("Untagged: {}", name.as_str().unwrap_or_default());
        }
    }
    let c = &v["collected"];
    if c["blobs"].as_u64().unwrap_or(0) + c["snapshots"].as_u64().unwrap_or(0) > 0 {
        println!(
            "Deleted {} blobs ({}) and {} layers",
            c["blobs"],
            human_size(c["blob_bytes"].as_u64().unwrap_or(0)),
            c["snapshots"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// OCI layout directory, OCI archive or `docker save` archive.
    #[arg(short = 'i', long = "input", value_name = "FILE|DIR")]
    input: PathBuf,
}

pub(crate) async fn load(g: &Globals, a: LoadArgs) -> Result<ExitCode> {
    let path = config::absolute(&a.input)?;
    let v = client(g).berth("LoadImages", json!({"path": path})).await?;
    for i in v["images"].as_array().into_iter().flatten() {
        println!(
            "Loaded image: {} ({})",
            i["reference"].as_str().unwrap_or_default(),
            i["manifest_digest"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    /// The archive to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Images to save.
    #[arg(required = true)]
    references: Vec<String>,
}

pub(crate) async fn save(g: &Globals, a: SaveArgs) -> Result<ExitCode> {
    let out = config::absolute(&a.output)?;
    client(g)
        .berth(
            "SaveImages",
            json!({"references": a.references, "output": out}),
        )
        .await
        .with_context(|| format!("saving to {}", out.display()))?;
    println!("Saved {} image(s) to {}", a.references.len(), out.display());
    Ok(ExitCode::SUCCESS)
}
