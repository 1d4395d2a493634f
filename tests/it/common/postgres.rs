//! A PostgreSQL server owned by one test (Debian's binaries, a plain process
//! on 127.0.0.1), which the test can stop and start, optionally with TLS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dynamo_cdc::decode::decode_item;
use dynamo_cdc::model::{canonical_item, Item};

/// A PostgreSQL server of one test's own; stopped when dropped.
pub struct OwnPostgres {
    dir: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
    tls: bool,
}

/// The files of a TLS setup made by [`OwnPostgres::create_tls`].
pub struct TlsFiles {
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca: PathBuf,
}

fn bin() -> PathBuf {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/test.sh installs it)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version")
}

/// Runs a PostgreSQL program as the postgres user when we are root
/// (initdb and postgres refuse root).
fn as_postgres(program: PathBuf) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn run(command: &mut Command) {
    let status = command.status().expect("run a command");
    assert!(status.success(), "{command:?} failed");
}

fn chown_to_postgres(path: &Path) {
    if is_root() {
        run(Command::new("chown").args(["-R", "postgres:"]).arg(path));
    }
}

impl OwnPostgres {
    /// initdb under `dir` and start a server without TLS.
    pub fn create(dir: &Path) -> Self {
        Self::init(dir, false)
    }

    /// initdb under `dir` and start a server that accepts TCP connections
    /// only over TLS (`hostssl`), with a certificate for 127.0.0.1 signed by
    /// a fresh CA; local socket connections stay open for the test's checks.
    pub fn create_tls(dir: &Path) -> (Self, TlsFiles) {
        std::fs::create_dir_all(dir).expect("dir");
        let ca = make_certificates(dir);
        (Self::init(dir, true), TlsFiles { ca })
    }

    fn init(dir: &Path, tls: bool) -> Self {
        std::fs::create_dir_all(dir).expect("dir");
        chown_to_postgres(dir);
        run(as_postgres(bin().join("initdb"))
            .args(["-D"])
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .stdout(Stdio::null()));
        if tls {
            std::fs::write(
                dir.join("data/pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )
            .expect("pg_hba.conf");
            chown_to_postgres(&dir.join("data/pg_hba.conf"));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut server = Self {
            dir: dir.to_owned(),
            port,
            child: None,
            tls,
        };
        server.start();
        server
    }

    /// A connection string over TCP (plain; add `sslmode=require` for TLS).
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// A connection string over the server's Unix socket (never TLS).
    pub fn socket_url(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.display(),
            self.port
        )
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) {
        let mut command = as_postgres(bin().join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-p",
                &self.port.to_string(),
            ])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()));
        if self.tls {
            command
                .args(["-c", "ssl=on", "-c"])
                .arg(format!(
                    "ssl_cert_file={}",
                    self.dir.join("server.crt").display()
                ))
                .arg("-c")
                .arg(format!(
                    "ssl_key_file={}",
                    self.dir.join("server.key").display()
                ));
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.join("server.log")).expect("server log"),
            ))
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let ready = bin().join("pg_isready");
        let port = self.port.to_string();
        super::wait_for(
            "PostgreSQL to accept connections",
            Duration::from_secs(30),
            || {
                Command::new(&ready)
                    .args(["-q", "-h", "127.0.0.1", "-p", &port])
                    .status()
                    .is_ok_and(|s| s.success())
            },
        );
    }

    /// Fast shutdown (SIGINT to the postmaster), waiting until it is gone.
    pub fn stop(&mut self) {
        let pid_file = self.dir.join("data/postmaster.pid");
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            if let Some(pid) = text.lines().next() {
                let _ = Command::new("kill").args(["-INT", pid]).status();
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a server certificate for 127.0.0.1 under `dir` (openssl CLI);
/// returns the CA certificate's path.
fn make_certificates(dir: &Path) -> PathBuf {
    let openssl = |args: &[&str]| {
        run(Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()))
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=dynamo-cdc test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod server.key");
    chown_to_postgres(dir);
    dir.join("ca.crt")
}

/// The rows of `<schema>.<table>_live` (keys `pk`, `sk`) as canonical items.
pub async fn live(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> BTreeMap<(String, String), Item> {
    let rows = client
        .query(
            &format!("SELECT pk, sk::text, item_dynamodb::text FROM \"{schema}\".\"{table}_live\""),
            &[],
        )
        .await
        .expect("query the live view");
    rows.iter()
        .map(|row| {
            let item = decode_item(row.get::<_, &str>(2)).expect("item decodes");
            (
                (row.get::<_, String>(0), row.get::<_, String>(1)),
                canonical_item(&item),
            )
        })
        .collect()
}
