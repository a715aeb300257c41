//! Pulls one image with the image service, the way the daemon will: the driver of
//! `bench/pull.sh` until `berth pull` exists.
//!
//! ```text
//! pull --data-root DIR [--insecure-registry HOST:PORT]... [--platform OS/ARCH[/VARIANT]]
//!      [--max-concurrent-layers N] [--progress] REF
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use berth_registry::client::ClientConfig;
use berth_registry::{Platform, RegistryClient};
use berth_runtime::db::{Db, DbHandle};
use berth_runtime::images::{ImageService, ImageServiceConfig, Progress, ProgressRenderer};
use berth_runtime::paths::Paths;

struct Args {
    data_root: PathBuf,
    insecure: Vec<String>,
    platform: Option<Platform>,
    progress: bool,
    layers: usize,
    reference: String,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut data_root, mut insecure, mut platform, mut progress, mut reference) =
        (None, Vec::new(), None, false, None);
    let mut layers = ImageServiceConfig::default().max_concurrent_layers;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data-root" => {
                data_root = Some(PathBuf::from(it.next().ok_or("--data-root needs a value")?))
            }
            "--insecure-registry" => {
                insecure.push(it.next().ok_or("--insecure-registry needs a value")?)
            }
            "--platform" => {
                platform = Some(
                    it.next()
                        .ok_or("--platform needs a value")?
                        .parse()
                        .map_err(|e| format!("{e}"))?,
                )
            }
            "--progress" => progress = true,
            "--max-concurrent-layers" => {
                layers = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--max-concurrent-layers needs a number")?
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => reference = Some(s.to_owned()),
        }
    }
    Ok(Args {
        data_root: data_root.ok_or("--data-root is required")?,
        insecure,
        platform,
        progress,
        layers,
        reference: reference.ok_or("an image reference is required")?,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "pull: {e}\nusage: pull --data-root DIR [--insecure-registry HOST:PORT]... [--platform P] [--max-concurrent-layers N] [--progress] REF"
            );
            return ExitCode::from(2);
        }
    };
    let data_root = std::path::absolute(&args.data_root).expect("current directory");
    std::fs::create_dir_all(&data_root).expect("creating the data root");
    let config = ImageServiceConfig {
        registry: ClientConfig {
            insecure_registries: args.insecure,
            ..ClientConfig::default()
        },
        max_concurrent_layers: args.layers,
        ..ImageServiceConfig::default()
    };
    // As a daemon would: the registry client first (it loads TLS roots in the
    // background), then the database.
    let client = RegistryClient::new(config.registry.clone());
    let paths = Paths::new(&data_root, data_root.join("run"));
    let db = DbHandle::spawn(Db::open(&paths.database()).expect("opening the database"));
    let svc = match ImageService::open_with_client(&paths, db, config, client).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pull: {e}");
            return ExitCode::FAILURE;
        }
    };
    let progress = if args.progress {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        let renderer = std::sync::Mutex::new(ProgressRenderer::new(std::io::stderr(), tty));
        Progress::new(move |e| {
            let _ = renderer.lock().expect("not poisoned").event(&e);
        })
    } else {
        Progress::none()
    };
    match svc
        .pull(&args.reference, args.platform.as_ref(), &progress)
        .await
    {
        Ok(s) => {
            println!("{} {} {}", s.reference, s.manifest_digest, s.size);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("pull: {msg} ({})", e.class().label());
            ExitCode::FAILURE
        }
    }
}
