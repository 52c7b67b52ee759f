//! `windlass-apiserver`: the in-memory Kubernetes API server over HTTPS (or
//! plain HTTP), until interrupted.
//!
//! ```text
//! windlass-apiserver [--port N] [--plain-http] [--kubeconfig-out PATH]
//! ```
//!
//! It prints the URL it serves on, writes a kubeconfig (with embedded
//! certificate data) when asked, and logs each request on one line to
//! stderr: method, path, status, latency.

use std::path::PathBuf;
use std::process::ExitCode;

use windlass_testkit::apiserver::ApiServer;

const USAGE: &str = "usage: windlass-apiserver [--port N] [--plain-http] [--kubeconfig-out PATH]";

struct Args {
    port: u16,
    plain_http: bool,
    kubeconfig_out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        plain_http: false,
        kubeconfig_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                args.port = v
                    .parse()
                    .map_err(|_| format!("--port {v:?}: not a port number"))?;
            }
            "--plain-http" => args.plain_http = true,
            "--kubeconfig-out" => {
                args.kubeconfig_out = Some(PathBuf::from(value("--kubeconfig-out")?))
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("windlass-apiserver: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match ApiServer::builder()
        .tls(!args.plain_http)
        .port(args.port)
        .log_requests(|record| eprintln!("{record}"))
        .start()
        .await
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("windlass-apiserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig_out {
        if let Err(e) = std::fs::write(path, server.kubeconfig()) {
            eprintln!(
                "windlass-apiserver: writing kubeconfig {}: {e}",
                path.display()
            );
            server.shutdown().await;
            return ExitCode::FAILURE;
        }
        eprintln!(
            "windlass-apiserver: kubeconfig written to {}",
            path.display()
        );
    }
    println!("windlass-apiserver serving on {}", server.url());
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}
