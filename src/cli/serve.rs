//! `sopflow serve`: the HTTP API and web console over the embedded store, and `sopflow user`:
//! making password hashes and tokens for the users file.

/// A line of the banner on stdout. A closed stdout (a supervisor that stopped reading) must
/// not stop the server, as `println!` would by panicking: the line is dropped instead.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use super::render;
use super::runtime::StoreArgs;
use sopflow::engine::{Engine, EngineError};
use sopflow::server::auth::{self, Users};
use sopflow::server::{AppState, Limits, Server};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `sopflow serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Where to listen. Anything but a loopback address is refused while the users file has
    /// demo users.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The users file: people, their roles, password hashes and token hashes.
    #[arg(long, default_value = "config/users.yaml")]
    pub users: PathBuf,
    /// The channels file: how notifications leave (webhooks, WeCom and DingTalk robots,
    /// e-mail). Without one, notifications reach people's 通知 page in the console only.
    #[arg(long, default_value = "config/channels.yaml")]
    pub channels: PathBuf,
    /// The console's address as people reach it (`https://flow.example.cn`), for the links in
    /// notifications; by default the address it listens on.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Do not watch the definition folders (or, with `--definitions store`, the store's
    /// deploys) for changes.
    #[arg(long)]
    pub no_watch: bool,
    /// Where the definitions come from: `files` (the --workflows, --rules and --calendars
    /// folders, watched for edits: one server) or `store` (the set `sopflow deploy` put in
    /// the store, followed as new sets are deployed: every server of a cluster runs the same).
    #[arg(long, value_enum, default_value_t = Definitions::Files)]
    pub definitions: Definitions,
    /// Seconds a client may take to send a request's head; also how long an idle kept-alive
    /// connection stays open.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().header_timeout.as_secs())]
    pub header_timeout: u64,
    /// Seconds a client may take to send a request's body.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().body_timeout.as_secs())]
    pub body_timeout: u64,
    /// Open connections in all.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Open connections from one client address (behind a reverse proxy, every connection
    /// comes from the proxy: raise this to --max-connections there).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_client)]
    pub max_connections_per_client: usize,
}

/// `serve --definitions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Definitions {
    /// The definition folders on this machine.
    Files,
    /// The set deployed to the store.
    Store,
}

impl ServeArgs {
    /// The server's limits, from the flags.
    fn limits(&self) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout.max(1)),
            max_connections: self.max_connections.max(1),
            max_connections_per_client: self.max_connections_per_client.max(1),
            ..Limits::default()
        }
    }
}

pub fn serve(args: &ServeArgs) -> ExitCode {
    init_logging();
    let users = match Users::load(&args.users) {
        Ok(users) => users,
        Err(err) => {
            eprintln!(
                "error: {err}\nhint: the shipped demo users are in config/users.yaml; `sopflow user hash-password` and `sopflow user new-token` make the hashes a users file holds"
            );
            return ExitCode::from(1);
        }
    };
    let channels = match load_channels(&args.channels) {
        Ok(channels) => channels,
        Err(err) => {
            eprintln!(
                "error: {err}\nhint: see \"Channels\" in the README; secrets are named by `*_env` and read from the environment"
            );
            return ExitCode::from(1);
        }
    };
    let public_url = match public_url(args) {
        Ok(url) => url,
        Err(err) => {
            eprintln!("error: --public-url: {err}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let mut config = args.store.config(true).link_base(public_url);
    let from_store = args.definitions == Definitions::Store;
    if from_store {
        config = config.deployed_definitions();
    }
    let watched = if from_store {
        Vec::new()
    } else {
        config.sources.clone()
    };
    let code = runtime.block_on(async {
        let opened = Engine::open(config).await;
        // A definition with errors is shown as `validate` shows it, with its source lines.
        let report = match &opened {
            Err(EngineError::DefinitionsInvalid { report }) => Some(report.clone()),
            Ok(engine) => Some(engine.load_report()),
            Err(_) => None,
        };
        let lang = super::runtime::chosen_lang(None);
        if let Some(report) = report.filter(|r| r.has_errors()) {
            eprint!(
                "{}",
                render::human(
                    &report.diagnostics,
                    &report.texts,
                    std::io::stderr().is_terminal(),
                    lang,
                )
            );
            eprintln!(
                "error: not serving: {} error(s) in the definitions; fix them (`sopflow validate` shows the same report) and start again",
                report.errors()
            );
            return ExitCode::from(1);
        }
        let engine = match opened {
            Ok(engine) => engine,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(1);
            }
        };
        let report = engine.load_report();
        if let Some(list) = &report.catalog.roles {
            let unlisted = users.unlisted_roles(list);
            for (user, role, hint) in &unlisted {
                eprintln!(
                    "error: {}: user `{user}` holds the role `{role}`, which {} does not list\nhint: {}",
                    args.users.display(),
                    list.file.display(),
                    lang.render(hint)
                );
            }
            if !unlisted.is_empty() {
                eprintln!(
                    "error: not serving: {} role(s) in the users file are not the organisation's; fix the users file or the role list and start again",
                    unlisted.len()
                );
                return ExitCode::from(1);
            }
        }
        let demo: Vec<String> = users.demo_ids();
        let demo_set = users.has_demo();
        // Said after the banner, with the other lines about what runs.
        let mut channel_lines: Vec<String> = channels
            .iter()
            .map(|channel| match channel.unavailable() {
                Some(what) => format!(
                    "channel {}: not set up, so it carries nothing ({what})",
                    channel.id
                ),
                None => format!("channel {}: {}", channel.id, channel.describe()),
            })
            .collect();
        for (workflow, definition) in &report.catalog.definitions {
            for name in sopflow::notify::channels_named(&definition.workflow) {
                if channels.get(&name).is_none() {
                    channel_lines.push(format!(
                        "warning: workflow {workflow} sends notices to channel {name}, which {} does not configure: they become dead letters until it does",
                        args.channels.display()
                    ));
                }
            }
        }
        let state = AppState::with_limits(engine.clone(), users, watched, args.limits())
            .with_channels(channels);
        let server = match Server::bind(state, args.addr).await {
            Ok(server) => server,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(1);
            }
        };
        let addr = server.local_addr().unwrap_or(args.addr);
        say!(
            "sopflow: {} workflow(s), {} warning(s); data in {}",
            engine.workflows().len(),
            report.warnings(),
            args.store.location()
        );
        // The warnings it counts, one line each, so that nobody has to run `validate` to see them.
        for d in report
            .diagnostics
            .iter()
            .filter(|d| d.severity == sopflow::Severity::Warning)
        {
            say!(
                "  {}[{}]: {}:{}:{}: {}",
                lang.severity(d.severity),
                d.code,
                sopflow::diagnostic::display_path(&d.file),
                d.span.line,
                d.span.column,
                lang.render(&d.message)
            );
        }
        for line in &channel_lines {
            say!("{line}");
        }
        say!("console: http://{addr}/   API: http://{addr}/api   OpenAPI: http://{addr}/api/openapi.json");
        if demo_set {
            say!(
                "DEVELOPMENT MODE: {} is a demo set; its users' passwords are public (`demo`). Only this machine may use them, never through a proxy; for real use, write a users file without demo users.",
                args.users.display()
            );
            if !demo.is_empty() {
                say!("demo users: {}", demo.join(", "));
            }
        }
        match (args.no_watch, engine.deployed_set()) {
            (true, _) => {}
            (false, Some(set)) => say!(
                "running the definition set deployed to the store ({set}); new deploys apply to new instances"
            ),
            (false, None) => {
                say!("watching the definition folders: edits apply to new instances")
            }
        }
        match server.run(!args.no_watch, shutdown_signal()).await {
            Ok(()) => {
                say!("sopflow: stopped; every acknowledged step is on disk");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(1)
            }
        }
    });
    // The engine (and its store) close here, after the last request finished.
    drop(runtime);
    code
}

/// The channels file, or none when the default one is missing.
fn load_channels(path: &std::path::Path) -> Result<sopflow::delivery::Channels, String> {
    if !path.exists() && path == std::path::Path::new("config/channels.yaml") {
        return Ok(sopflow::delivery::Channels::default());
    }
    sopflow::delivery::Channels::load(path, &|name| std::env::var(name).ok())
        .map_err(|err| err.to_string())
}

/// The base of notices' links: `--public-url`, or the address listened on.
fn public_url(args: &ServeArgs) -> Result<String, String> {
    let Some(given) = &args.public_url else {
        return Ok(format!("http://{}", args.addr));
    };
    let url = reqwest::Url::parse(given).map_err(|err| format!("{given:?} is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(format!(
            "{given:?}: give the console's address, http or https, without a query, fragment or user"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Logs to standard error; `RUST_LOG` chooses what (default: info for sopflow).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("sopflow=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// `sopflow user`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Read a password from standard input (one line) and print its Argon2id hash for the
    /// users file's `password:`.
    HashPassword,
    /// Print a new random API token, and the hash to put in the users file's `tokens:`. The
    /// token is shown once; only its hash is stored.
    NewToken,
}

pub fn user(command: &UserCommand) -> ExitCode {
    match command {
        UserCommand::HashPassword => {
            if std::io::stdin().is_terminal() {
                eprintln!("password (then Enter):");
            }
            let mut line = String::new();
            if let Err(err) = std::io::stdin().lock().read_line(&mut line) {
                eprintln!("error: cannot read standard input: {err}");
                return ExitCode::from(1);
            }
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                eprintln!("error: the password is empty");
                return ExitCode::from(2);
            }
            match auth::hash_password(password) {
                Ok(hash) => {
                    say!("{hash}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::from(1)
                }
            }
        }
        UserCommand::NewToken => match auth::new_token() {
            Ok(token) => {
                say!("token: {token}");
                say!("hash:  {}", auth::token_hash(&token));
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(1)
            }
        },
    }
}
